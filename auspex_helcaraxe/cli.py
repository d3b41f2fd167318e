"""The ``helcaraxe`` command line.

Exit codes: 0 analysed (clean or iced), 1 ice found with ``--fail-on-ice``, 2 any error
(bad input gets one line on stderr, never a traceback; a batch goes on and reports failures).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .errors import InputError

EXIT_OK, EXIT_ICE, EXIT_ERROR = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in DELEGATED:  # their own parsers (in the training package) take every argument
        args = argparse.Namespace(command=argv[0], args=argv[1:], func=DELEGATED[argv[0]])
    elif argv and argv[0] == "auspex":  # our options; every other argument goes to AUSPEX
        sub = parser._subparsers._group_actions[0].choices["auspex"]  # noqa: SLF001
        args, rest = sub.parse_known_args(argv[1:])
        args.command, args.auspex_args = "auspex", rest
    else:
        args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_ERROR
    try:
        return args.func(args)
    except InputError as exc:
        _error(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, no traceback
        if getattr(args, "debug", False):
            raise
        _error(f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
               "(rerun with --debug for a traceback)")
        return EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="helcaraxe",
        description="Find ice rings in merged X-ray diffraction data (Helcaraxe CNN + AUSPEX Icefinder).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser("check", help="analyse MTZ / sf-mmCIF / XDS_ASCII / scalepack / SHELX files "
                                         "(unmerged data are merged on the fly)")
    check.add_argument("files", nargs="+", metavar="FILE")
    _add_analysis_arguments(check)
    check.add_argument("--out", type=Path,
                       help="directory for figures, one <file>.json per input and index.html (the HTML report)")
    check.add_argument("--json", type=Path, dest="json_path", help="write the JSON report here (single input)")
    check.add_argument("--format", choices=("png", "svg", "pdf"), default="png", help="figure format (default png)")
    check.add_argument("--no-figures", action="store_true", help="with --out: write only the JSON reports")
    check.add_argument("--fail-on-ice", action="store_true", help="exit 1 when ice is found")
    check.add_argument("--explain", action="store_true",
                       help="draw occlusion-sensitivity maps over the Helcaraxe plots of flagged ranges")
    check.add_argument("--columns", type=_parse_columns, default=None, metavar="I=LABEL,F=LABEL",
                       help="override the column choice, e.g. I=IMEAN,F=FP")
    check.add_argument("--block", default=None, help="sf-mmCIF data block (name or 0-based number; default: first)")
    check.add_argument("--cell", type=_parse_cell, default=None, metavar="A,B,C,AL,BE,GA",
                       help="unit cell for files that carry none (SHELX .hkl without .ins/.res beside it)")
    check.add_argument("--space-group", default=None, metavar="NAME",
                       help="space group for files that carry none, e.g. 'P 21 21 21' (SHELX .hkl)")
    check.add_argument("-q", "--quiet", action="store_true", help="print only the verdict line per file")
    check.set_defaults(func=cmd_check)

    demo = sub.add_parser("demo", help="simulate a data set with an ice ring and analyse it")
    demo.add_argument("--out", type=Path, default=Path("helcaraxe-demo"), help="output directory (default ./helcaraxe-demo)")
    demo.add_argument("--seed", type=int, default=2022)
    _add_analysis_arguments(demo)
    demo.set_defaults(func=cmd_demo)

    scan = sub.add_parser("scan", help="survey many data sets into a resumable results store (SQLite)")
    scan.add_argument("paths", nargs="*", metavar="PATH",
                      help="files, directories (searched recursively) or list files (one path per line)")
    scan.add_argument("--db", type=Path, default=Path("helcaraxe-scan.sqlite"),
                      help="results store (default ./helcaraxe-scan.sqlite); re-running skips what is done")
    scan.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                      help="worker processes (default: one per core; 0: in this process)")
    scan.add_argument("--dask-scheduler", default=None, metavar="URL",
                      help="run on a Dask distributed cluster (tcp://host:8786; needs the [dask] extra)")
    scan.add_argument("--retry-failed", action="store_true", help="analyse data sets that failed before again")
    scan.add_argument("--parquet", type=Path, default=None, metavar="DIR",
                      help="export the store as Parquet tables (needs the [parquet] extra)")
    scan.add_argument("--summary", type=Path, default=None, metavar="OUT_DIR", help="draw the survey figures")
    scan.add_argument("--report", type=Path, default=None, metavar="OUT_DIR",
                      help="write the HTML survey page OUT_DIR/index.html (+ a page per flagged data set)")
    scan.add_argument("--metadata", type=Path, default=None, metavar="CSV",
                      help="with --summary/--report: CSV of id, deposition year, ... for the per-year numbers")
    scan.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_analysis_arguments(scan)
    scan.set_defaults(func=cmd_scan)

    train = sub.add_parser("train", add_help=False, help="train our I and F networks on simulated data ([train] extra)")
    train.add_argument("args", nargs=argparse.REMAINDER, help="see 'helcaraxe train --help'")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", add_help=False,
                              help="evaluate networks against the published ones and Icefinder (docs/evaluation.md)")
    evaluate.add_argument("args", nargs=argparse.REMAINDER, help="see 'helcaraxe evaluate --help'")
    evaluate.set_defaults(func=cmd_evaluate)

    convert = sub.add_parser("convert", help="turn a Keras Helcaraxe network (.h5) into TFLite + model card ([train] extra)")
    convert.add_argument("model", type=Path, metavar="MODEL.h5")
    convert.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    convert.add_argument("--observable", choices=("I", "F"), default=None,
                         help="default: from the file name (iobs/fobs)")
    convert.add_argument("--name", default=None, help="network name in the model card")
    convert.add_argument("--int8", action="store_true", help="dynamic-range int8 quantisation (default float32)")
    convert.add_argument("--threshold", type=float, default=0.5)
    convert.set_defaults(func=cmd_convert)

    aus = sub.add_parser("auspex", help="run an installed AUSPEX with these detectors in place of its Helcaraxe",
                         description="Run AUSPEX (2.3.2) on FILE in this process; options this command does not "
                         "know are passed to AUSPEX. The host's detectors replace AUSPEX's Helcaraxe call, "
                         "decide with their calibrated thresholds and annotate AUSPEX's I and F plots.")
    aus.add_argument("file", metavar="FILE")
    _add_analysis_arguments(aus)
    aus.set_defaults(func=cmd_auspex, auspex_args=[])

    det = sub.add_parser("detectors", help="list the registered ice detectors and installed networks")
    det.add_argument("--networks", default=None, metavar="DIR")
    det.set_defaults(func=cmd_detectors)
    for p in (check, demo, scan, convert, det):
        p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return parser


def _add_analysis_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ice-detector", default="both", metavar="{helcaraxe,icefinder,both,all,NAME[,NAME]}",
                   help="which detectors run (default both)")
    p.add_argument("--networks", default=None, metavar="DIR",
                   help="directory with *iobs*.tflite / *fobs*.tflite networks (default: the shipped ones)")
    p.add_argument("--threshold", type=float, default=None, help="Helcaraxe probability threshold (default 0.5)")
    p.add_argument("--icefinder-cutoff", type=float, default=5.0, help="Icefinder |score| cutoff (default 5)")


def _parse_columns(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in ("I", "F") or not value.strip():
            raise argparse.ArgumentTypeError(f"expected I=LABEL and/or F=LABEL, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def _parse_cell(text: str) -> tuple[float, ...]:
    try:
        cell = tuple(float(x) for x in text.replace(",", " ").split())
    except ValueError:
        cell = ()
    if len(cell) != 6 or not all(x > 0 for x in cell):
        raise argparse.ArgumentTypeError(f"expected six positive numbers a,b,c,alpha,beta,gamma, got {text!r}")
    return cell


def _options(args):
    from .results import AnalysisOptions

    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise InputError("--threshold must lie between 0 and 1")
    return AnalysisOptions(threshold=args.threshold, networks=args.networks,
                           icefinder_cutoff=args.icefinder_cutoff, explain=getattr(args, "explain", False))


def cmd_check(args) -> int:
    from .host import Host
    from .readers import read

    if args.json_path and len(args.files) > 1:
        raise InputError("--json takes a single input; use --out DIR for several files")
    host = Host()
    options = _options(args)
    host.select(args.ice_detector)  # unknown detector names fail before any file is read
    failures: list[tuple[str, str]] = []
    pages: list[dict] = []  # for DIR/index.html with --out
    any_ice = False
    for path in args.files:
        try:
            reflections = read(path, columns=args.columns, block=args.block, cell=args.cell,
                               space_group=args.space_group)
            analysis = host.analyse(reflections, detectors=args.ice_detector, options=options)
            any_ice |= analysis.iced
            pages.append(_emit(analysis, host, args))
        except InputError as exc:
            failures.append((path, str(exc)))
            pages.append({"file": path, "error": str(exc), "report": None})
            _error(str(exc))
    if getattr(args, "out", None):
        from .html import write_check

        index = write_check(pages, args.out)
        if not args.quiet:
            print(f"HTML report: {index}")
    if len(args.files) > 1:
        done = len(args.files) - len(failures)
        print(f"\n{done} of {len(args.files)} files analysed, {len(failures)} failed"
              + "".join(f"\n  FAILED {p}: {m}" for p, m in failures))
    if failures:
        return EXIT_ERROR
    return EXIT_ICE if (any_ice and args.fail_on_ice) else EXIT_OK


def _emit(analysis, host, args) -> dict:
    """Print the summary, write the JSON (and figures); return the entry for the HTML report."""
    from . import report

    if args.quiet:
        v = report.verdict(analysis)
        state = f"ice in {', '.join(map(str, v['ranges']))}" if v["iced"] else "no ice"
        if v["excised"]:
            state += f"; excised {', '.join(map(str, v['excised']))}"
        print(f"{analysis.reflections.name}: {state}")
    else:
        print(report.summary_text(analysis))
    if args.json_path:
        report.write_json(analysis, args.json_path)
    figures: list = []
    if args.out:
        name = analysis.reflections.name
        written = [report.write_json(analysis, args.out / f"{name}.json")]
        if not args.no_figures:
            from .figures import draw_resolution_plots

            figures = draw_resolution_plots(analysis, host, args.out, fmt=args.format, explain=args.explain)
            written += figures
        if not args.quiet:
            print("  wrote " + ", ".join(str(p) for p in written))
        import json  # the page shows the JSON as written

        return {"file": analysis.reflections.source, "error": None, "report": json.loads(written[0].read_text()),
                "figures": figures}
    return {}


def cmd_demo(args) -> int:
    from .simulate import demo_dataset, write_mtz

    args.out.mkdir(parents=True, exist_ok=True)
    mtz = write_mtz(demo_dataset(seed=args.seed), args.out / "demo_ice.mtz")
    print(f"Simulated a merged data set with an ice ring in range 5 (2.29-2.21 Å): {mtz}\n")
    args.files, args.json_path, args.format, args.no_figures = [str(mtz)], None, "png", False
    args.fail_on_ice = args.explain = args.quiet = False
    args.columns = args.block = args.cell = args.space_group = None
    return cmd_check(args)


def cmd_scan(args) -> int:
    from .scan.command import scan_command

    return scan_command(args, _options(args))


TRAIN_EXTRA_HINT = "needs TensorFlow: pip install 'auspex-helcaraxe[train]'"


def _training_module(name: str):
    import importlib

    try:
        return importlib.import_module(f"auspex_helcaraxe.training.{name}")
    except ImportError as exc:
        if "tensorflow" in str(exc) or "keras" in str(exc):
            raise InputError(f"helcaraxe {name} {TRAIN_EXTRA_HINT}") from None
        raise


def cmd_train(args) -> int:
    return _training_module("train").main(args.args)


def cmd_evaluate(args) -> int:
    return _training_module("evaluate").main(args.args)


DELEGATED = {"train": cmd_train, "evaluate": cmd_evaluate}


def cmd_convert(args) -> int:
    if not args.model.is_file():
        raise InputError(f"{args.model}: no such file")
    try:
        convert = _training_module("convert").convert
        out = convert(args.model, args.out_dir, args.observable, name=args.name,
                      quantisation="dynamic" if args.int8 else "none", threshold=args.threshold)
    except ImportError as exc:  # TensorFlow is imported lazily inside convert
        raise InputError(f"helcaraxe convert {TRAIN_EXTRA_HINT} ({exc})") from None
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return EXIT_OK


def cmd_auspex(args) -> int:
    from .integrations.auspex import run_auspex, summary_lines

    if not os.path.exists(args.file):
        raise InputError(f"{args.file}: no such file")
    run = run_auspex(args.file, args.auspex_args, detectors=args.ice_detector, options=_options(args))
    for line in summary_lines(run):
        print(f"helcaraxe auspex: {line}")
    return EXIT_OK


def cmd_detectors(args) -> int:
    from .host import Host
    from .network import NO_NETWORK_HINT, load_networks

    host = Host()
    for name, det in sorted(host.detectors.items()):
        print(f"{name}: {det.description}")
    nets = load_networks(args.networks)
    if not nets:
        print(f"networks: none ({NO_NETWORK_HINT})")
    for kind, net in sorted(nets.items()):
        print(f"network {kind}: {net.card.name} version {net.card.version} ({net.path}, sha256 {net.card.sha256[:12]})")
    return EXIT_OK


def _error(message: str) -> None:
    print(f"helcaraxe: error: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
