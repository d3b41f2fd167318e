"""Stand-in for AUSPEX's ReflectionData/AutoReader.FileReader (MTZ only, read with gemmi)."""
import gemmi
import numpy as np

from .ReflectionBase import ReflectionParser


def FileReader(filename, input_type=None, unit_cell=None, space_group_number=None):
    mtz = gemmi.read_mtz_file(filename)
    parser = ReflectionParser()
    labels = mtz.column_labels()
    types = [c.type for c in mtz.columns]

    def column(kind):
        for k, (label, t) in enumerate(zip(labels, types)):
            if t == kind and k + 1 < len(types) and types[k + 1] == "Q":
                # missing values become 0 (cctbx's extract_values does the same), dropped as obs == 0
                return (np.nan_to_num(np.array(mtz.column_with_label(label), np.float32)),
                        np.nan_to_num(np.array(mtz.columns[k + 1], np.float32)))
        return None, None

    parser._I, parser._sigI = column("J")
    parser._F, parser._sigF = column("F")
    parser._resolution = np.asarray(mtz.make_d_array(), np.float64)
    parser._filename = filename
    parser.source_data_format = "mtz"
    return parser
