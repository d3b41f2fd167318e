"""Stand-in for AUSPEX's Parser.py: the command-line script (argparse at import time)."""
import argparse
import sys
from os.path import exists

from auspex import __version__  # noqa: F401  (Parser.py line 7)
from Auspex import IceFinder
from IceRings import IceRing
from Plotter import PlotGenerator
from ReflectionData.AutoReader import FileReader

parser = argparse.ArgumentParser(description="AUSPEX (stand-in)")
parser.add_argument("hklin", metavar="HKLIN", type=str, nargs=1)
parser.add_argument("--helcaraxe", dest="helcaraxe", action="store_false", default=True)
parser.add_argument("--directory", dest="directory", type=str, default=".")
parser.add_argument("--cutoff", dest="cutoff", type=float, default=5)
parser.add_argument("--no-automatic", dest="no_automatic", action="store_true", default=False)
parser.add_argument("--dont-use-anom-if-present", dest="use_anom_if_present", action="store_false", default=True)
args = parser.parse_args(sys.argv[1:])
filename = args.hklin[0]

if exists(filename):
    # Parser.py, after parse_args: IceFinder, run_helcaraxe() when args.helcaraxe, then the plots
    ice_info = IceFinder(FileReader(filename), IceRing(), use_anom_if_present=args.use_anom_if_present)
    if args.helcaraxe is True:
        ice_info.run_helcaraxe()
    plot = PlotGenerator(ice_info, output_directory=args.directory, cutoff=args.cutoff,
                         no_automatic=args.no_automatic)
    plot.generate(ice_info, None, None)
else:
    print("File {0} does not exist.".format(filename))
