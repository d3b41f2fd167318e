"""Stand-in for AUSPEX's Plotter.py: GenericPlot.generate draws on self.ax (x: 1/d²)."""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


class GenericPlot:
    def __init__(self, ice_rings, ax=None, cutoff=5, no_automatic=False, **kwargs):
        # Plotter.py GenericPlot.__init__: self.ax is the Axes it draws on (or None)
        self.ice_rings = ice_rings
        self.ax = ax
        self.cutoff = cutoff
        self.no_automatic = no_automatic

    def generate(self, icefinder_handle, resolution, y_data):
        # Plotter.py GenericPlot.generate: new figure if self.ax is None, scatter,
        # grey ice-ring rectangles, red rectangles for ice_range_by_helcaraxe() when helcaraxe_status
        ax1 = self.ax if self.ax is not None else plt.figure().add_subplot(111)
        ax1.scatter(resolution, y_data, 4, color="#0d0d0d", linewidth=0)
        ymin, ymax = float(min(0, y_data.min())), float(y_data.max())
        for lb, ub in self.ice_rings:
            ax1.add_patch(matplotlib.patches.Rectangle((lb, ymin), ub - lb, ymax - ymin, color="grey", alpha=0.1))
        if not self.no_automatic and icefinder_handle.helcaraxe_status:
            ranges = icefinder_handle.ice_range_by_helcaraxe()
            for (lb, ub), score in zip(ranges, icefinder_handle.quantitative_score()):
                ax1.add_patch(matplotlib.patches.Rectangle((lb, ymin), ub - lb, ymax - ymin, color="red",
                                                           alpha=0.5 * score, gid="auspex-ice"))


class IPlot(GenericPlot):
    def __init__(self, ice_rings, **kwargs):
        super().__init__(ice_rings, **kwargs)
        self.filename = "I_plot.png"
        self.data_type = "I"


class FPlot(GenericPlot):
    def __init__(self, ice_rings, **kwargs):
        super().__init__(ice_rings, **kwargs)
        self.filename = "F_plot.png"
        self.data_type = "F"


class PlotGenerator:
    def __init__(self, icefinder_handle, output_directory=".", cutoff=5, no_automatic=False, **kwargs):
        self.icefinder_handle = icefinder_handle
        self.output_directory = output_directory
        self._ice_rings = icefinder_handle.ice_ring.ice_rings
        self._cutoff = cutoff
        self._no_automatic = no_automatic

    def generate(self, icefinder_handle, nemo_handle_F=None, nemo_handle_I=None):
        # Plotter.py PlotGenerator.generate: one plt.subplots figure per plot
        for data, cls in ((icefinder_handle.iobs, IPlot), (icefinder_handle.fobs, FPlot)):
            if data is None or data.size() == 0:
                continue
            fig, ax = plt.subplots(1, 1)
            plot = cls(self._ice_rings, ax=ax, cutoff=self._cutoff, no_automatic=self._no_automatic)
            plot.generate(self.icefinder_handle, data.invresolsq(), data.obs)
            fig.savefig(os.path.join(self.output_directory, plot.filename), dpi=50)
