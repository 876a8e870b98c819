"""What the benchmark scripts share: process settings, environment records, timing, reporting, plots.

- **Process settings** (:func:`ensure_process_settings`) and the record of the machine, the
  libraries and those settings (:func:`environment`).
- **Timing** (:func:`measure`, :func:`ratios`, :func:`summary`): every method is timed in each
  repeat, the methods' order rotated between repeats, and ratios are taken within a repeat
  (on a noisy shared machine only such ratios are comparable).
- **Reporting** (:func:`command_line`, :func:`save_results`, :func:`parse_args`,
  :func:`markdown_header`, :func:`targets_markdown`, :func:`fmt_ratio`, :func:`fmt_ms`): each
  script's ``main``, and one JSON, one markdown file and one PNG per benchmark, named after its
  stem.
- **Plots** (:func:`pyplot`, :func:`plot_time_grid`, :func:`plot_time_vs_n`,
  :func:`finish_figure`): matplotlib with the Agg backend; log-log time against size, the median
  line with the min-max band.

Why a re-exec: glibc reads its ``MALLOC_*`` tunables once, at process start, so a script that
wants them (without them large FFT temporaries are returned to
the OS and page-faulted again on every call, 2-2.4x slower) must restart itself with them set.
The same restart fixes the BLAS/OpenMP thread counts before numpy loads its libraries, and
drops ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` (set on some machines for old OpenBLAS builds;
they slow the current one, which would flatter every comparison against a dense GEMM). The
values found and the values used are both recorded.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

__all__ = [
    "CLOCKS",
    "MALLOC_SETTINGS",
    "REPO_ROOT",
    "RESULTS_DIR",
    "command_line",
    "ensure_process_settings",
    "environment",
    "finish_figure",
    "fmt_ms",
    "fmt_ratio",
    "markdown_header",
    "measure",
    "parse_args",
    "plot_time_grid",
    "plot_time_vs_n",
    "pyplot",
    "ratios",
    "save_results",
    "summary",
    "targets_markdown",
    "write_json",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"

MALLOC_SETTINGS = {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": "17179869184",
    "MALLOC_TOP_PAD_": "67108864",
}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
OPENBLAS_TRAP = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_MARK = "LDR_BENCH_SETTINGS"  # set in the restarted process; holds what the parent found


def ensure_process_settings(script, argv, threads):
    """Restart ``script`` with the malloc tunables and thread counts set, unless already done.

    Parameters
    ----------
    script : str
        Path of the script to run again (``__file__`` of the caller's ``__main__``).
    argv : list of str
        Its arguments.
    threads : int
        Value for ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS``.

    Notes
    -----
    Only call this from a ``__main__`` block: it replaces the process (``os.execve``).
    """
    if os.environ.get(_MARK):
        return
    found = {k: os.environ.get(k) for k in (*MALLOC_SETTINGS, *THREAD_VARIABLES, *OPENBLAS_TRAP)}
    env = dict(os.environ)
    env.update(MALLOC_SETTINGS)
    for name in THREAD_VARIABLES:
        env[name] = str(threads)
    for name in OPENBLAS_TRAP:  # unset both together, in this benchmark process alone
        env.pop(name, None)
    env[_MARK] = json.dumps(found)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, str(script), *argv], env)


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_state():
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        return {"commit": head or None, "uncommitted_changes": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "uncommitted_changes": None}


def _versions(include_torch):
    import numpy
    import scipy

    versions = {"python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__}
    modules = ["matplotlib", "threadpoolctl"] + (["torch"] if include_torch else [])
    for name in modules:
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", "unknown")
        except ImportError:
            versions[name] = None
    try:
        from importlib.metadata import version

        versions["ldr-hydra"] = version("ldr-hydra")
    except Exception:  # not installed as a distribution: the source tree is used
        versions["ldr-hydra"] = None
    return versions


def _thread_pools():
    try:
        import threadpoolctl
    except ImportError:
        return None
    keep = ("user_api", "internal_api", "num_threads", "version", "architecture", "threading_layer")
    return [{k: pool.get(k) for k in keep} for pool in threadpoolctl.threadpool_info()]


def environment(include_torch=False):
    """A JSON-ready record of the machine, the libraries and the process settings.

    Parameters
    ----------
    include_torch : bool
        Import torch to record its version and thread count (slow to import).

    Returns
    -------
    dict
    """
    import scipy.fft

    found = os.environ.get(_MARK)
    record = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu_model": _cpu_model(),
            "logical_cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "platform": platform.platform(),
        },
        "versions": _versions(include_torch),
        "git": _git_state(),
        "settings": {
            "restarted_with_benchmark_settings": found is not None,
            "environment_as_found": json.loads(found) if found else None,
            "environment_used": {
                k: os.environ.get(k) for k in (*MALLOC_SETTINGS, *THREAD_VARIABLES, *OPENBLAS_TRAP)
            },
            "openblas_coretype_note": (
                "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the benchmark process "
                "(both together); 'environment_as_found' shows whether they were set"
            ),
            "thread_pools": _thread_pools(),
            "scipy_fft_default_workers": scipy.fft.get_workers(),
        },
    }
    if include_torch:
        try:
            import torch

            record["settings"]["torch_num_threads"] = torch.get_num_threads()
        except ImportError:
            pass
    return record


def write_json(path, payload):
    """Write ``payload`` as indented JSON, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


# -- timing -----------------------------------------------------------------------------------------
#: Clocks by name. "cpu" (process CPU time) is what other jobs on a shared machine disturb least,
#: but it adds up the time of every thread, so several threads are timed by the "wall" clock.
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def summary(values):
    """Median, minimum, maximum and every value (in measured order) of a list of numbers.

    Parameters
    ----------
    values : sequence of float
        At least one value.

    Returns
    -------
    dict
        ``{"median": float, "min": float, "max": float, "all": list of float}``.
    """
    values = [float(v) for v in values]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "all": values}


def _calls_per_block(fn, target_s, clock, warmup):
    """Calls per timed block so that a block lasts about ``target_s`` (at least one call)."""
    for _ in range(warmup):  # FFT plans, caches, optimizer state, first touch of workspaces
        fn()
    start = clock()
    fn()
    return max(1, min(10_000, math.ceil(target_s / max(clock() - start, 1e-7))))


def measure(methods, repeats, target_s, clock, warmup=2):
    """Time every method once per repeat, the methods' order rotated between repeats.

    Parameters
    ----------
    methods : dict of str to callable
        The functions to time, called without arguments.
    repeats : int
        Timed blocks per method.
    target_s : float
        Length a block should have; each method's calls per block are calibrated once, after
        ``warmup`` untimed calls (0 gives one call per block).
    clock : callable
        Returns seconds, e.g. a value of :data:`CLOCKS`.
    warmup : int
        Untimed calls before the calibrating one.

    Returns
    -------
    times : dict of str to list of float
        Seconds per call in each repeat, in repeat order, so that ``times[a][i] / times[b][i]``
        is a ratio measured in one repeat.
    calls : dict of str to int
        Calls per timed block.
    """
    names = list(methods)
    calls = {name: _calls_per_block(methods[name], target_s, clock, warmup) for name in names}
    times = {name: [] for name in names}
    for rep in range(repeats):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            fn, count = methods[name], calls[name]
            start = clock()
            for _ in range(count):
                fn()
            times[name].append((clock() - start) / count)
    return times, calls


def ratios(times, pairs):
    """Per-repeat ratios of measured times, summarised by :func:`summary`.

    Parameters
    ----------
    times : dict of str to list of float
        As returned by :func:`measure`.
    pairs : sequence of tuple
        ``(numerator, denominator)`` or ``(numerator, denominator, factor)``; the ratio is
        ``times[numerator] / (factor * times[denominator])``, keyed ``"num/den"`` or, with a
        factor other than 1, ``"num/{factor}den"`` (e.g. ``"layer_fb/2bare_fft"``).

    Returns
    -------
    dict of str to dict
    """
    out = {}
    for num, den, *rest in pairs:
        factor = rest[0] if rest else 1
        key = f"{num}/{'' if factor == 1 else factor}{den}"
        out[key] = summary([a / (factor * b) for a, b in zip(times[num], times[den])])
    return out


# -- reporting --------------------------------------------------------------------------------------
def fmt_ratio(value, digits=2):
    """``"median (min–max)"`` of a :func:`summary`."""
    return f"{value['median']:.{digits}f} ({value['min']:.{digits}f}–{value['max']:.{digits}f})"


def fmt_ms(value):
    """The median of a :func:`summary` of seconds, in milliseconds, 3 significant digits."""
    return f"{value['median'] * 1e3:.3g}"


def parse_args(parser, argv=None):
    """``(argv as a list, parsed arguments)``; ``argv`` defaults to ``sys.argv[1:]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return argv, parser.parse_args(argv)


def markdown_header(title, result):
    """The first lines of a benchmark's markdown: title, command, machine and malloc settings.

    Parameters
    ----------
    title : str
        Markdown heading text (without ``#``).
    result : dict
        With ``"command"`` and ``"environment"`` (from :func:`environment`).

    Returns
    -------
    list of str
    """
    env = result["environment"]
    used = env["settings"]["environment_used"]
    restarted = env["settings"]["restarted_with_benchmark_settings"]
    return [
        f"# {title}",
        "",
        "Command:",
        "",
        "```",
        result["command"],
        "```",
        "",
        f"- Machine: {env['machine']['cpu_model']}, {env['machine']['usable_cpus']} usable CPUs; "
        # The JSON keeps whether the working tree had local changes; the page for readers
        # names the commit only.
        f"{env['date_utc']}; git {str(env['git']['commit'])[:10]}",
        "- malloc: " + " ".join(f"{k}={used.get(k)}" for k in MALLOC_SETTINGS)
        + (" (set by the benchmark, which restarts itself with them: without them large FFT "
           "buffers go back to the OS and are page-faulted again on every call)" if restarted
           else " (not set by a restart: the process ran with the environment it was given)"),
    ]


def targets_markdown(rows, heading):
    """A ``## heading`` section tabulating target checks ``{"target", "case", "median_ratio", "met"}``."""
    lines = ["", f"## {heading}", "", "| target | case | ratio | met |", "|---|---|---:|---|"]
    for row in rows:
        lines.append(f"| {row['target']} | {row['case']} | {row['median_ratio']:.2f} | "
                     f"{'yes' if row['met'] else '**no**'} |")
    met = sum(row["met"] for row in rows)
    return lines + ["", f"{met} of {len(rows)} target checks met.", ""]


def save_results(result, *, script, argv, started, out, stem, markdown, plot=None, caption="plot"):
    """Record the command and wall time, then write ``stem.png``, ``stem.json`` and ``stem.md``.

    Parameters
    ----------
    result : dict
        The benchmark's result; gains ``"command"``, ``"wall_time_s"`` and, when a plot was
        written, ``"plot"`` (its file name, in the same folder), before the JSON and the
        markdown are written.
    script : str
        File name of the benchmark (``"bench_torch.py"``), for the recorded command when
        ``run_all`` did not set ``LDR_BENCH_COMMAND``.
    argv : list of str
        The arguments the script was given.
    started : float
        ``time.perf_counter()`` at the start of the run.
    out : path-like
        Results folder (created).
    stem : str
        Common file name of the three results.
    markdown : callable
        ``markdown(result) -> str``; the markdown file ends with it, then the PNG as an image
        (``![caption](stem.png)``) when one was written.
    plot : callable, optional
        ``plot(result, path)`` writes the PNG; None writes none. Without matplotlib the PNG is
        skipped with a message.
    caption : str
        Alternative text of the image in the markdown.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    result["command"] = os.environ.get("LDR_BENCH_COMMAND") or shlex.join(
        ["python", f"benchmarks/{script}", *argv]
    )
    result["wall_time_s"] = round(time.perf_counter() - started, 1)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    png, image = out / f"{stem}.png", ""
    if plot is not None:
        try:
            plot(result, png)
        except ImportError:
            print("  matplotlib is not installed: no plot (pip install matplotlib)")
        else:
            result["plot"] = png.name  # relative: no machine path in the committed results
            image = f"\n![{caption}]({png.name})\n"
    write_json(out / f"{stem}.json", result)
    (out / f"{stem}.md").write_text(markdown(result).rstrip("\n") + "\n" + image)
    return [out / f"{stem}.json", out / f"{stem}.md"] + ([png] if image else [])


def command_line(parser, run, *, script, stem, markdown, banner, plot=None, caption="plot", intercept=None):
    """A benchmark script's ``main(argv=None)``: parse, run, write the results, say where.

    Parameters
    ----------
    parser : callable
        Returns the script's :class:`argparse.ArgumentParser`; it has ``--out`` and ``--no-plot``.
    run : callable
        The benchmark. It receives the parsed options that it names as parameters (by their
        argparse ``dest``), plus ``progress``, and returns the result dictionary; a
        ``"targets"`` list in it (``{"met": bool, ...}`` rows) is counted in the last line.
    script : str
        File name of the script (``"bench_torch.py"``).
    stem, markdown, plot, caption
        As for :func:`save_results` (``--no-plot`` drops ``plot``).
    banner : callable
        ``banner(args) -> str``: the first line printed, after the script's name.
    intercept : callable, optional
        ``intercept(args)`` runs first; when it returns an int, ``main`` returns it at once
        (for internal modes such as a memory probe).

    Returns
    -------
    callable
        ``main(argv=None) -> int``; ``argv`` defaults to ``sys.argv[1:]``.
    """
    import inspect

    takes = set(inspect.signature(run).parameters)
    name = Path(script).stem

    def main(argv=None):
        argv, args = parse_args(parser(), argv)
        code = intercept(args) if intercept is not None else None
        if code is not None:
            return code
        started = time.perf_counter()
        print(f"{name}: {banner(args)}", flush=True)
        options = {key: value for key, value in vars(args).items() if key in takes}
        result = run(**options, progress=lambda line: print(line, flush=True))
        written = save_results(result, script=script, argv=argv, started=started, out=args.out, stem=stem,
                               markdown=markdown, plot=None if args.no_plot else plot, caption=caption)
        targets = result.get("targets")
        met = "" if targets is None else f"{sum(row['met'] for row in targets)} of {len(targets)} target checks met; "
        print(f"{name}: {met}wrote {', '.join(map(str, written))} in {result['wall_time_s']} s")
        return 0

    main.__doc__ = (
        f"Command-line entry point of ``{script}``: run, then write ``{stem}.{{json,md,png}}``. Returns 0.\n\n"
        "``argv`` defaults to ``sys.argv[1:]`` (e.g. ``[\"--quick\"]``; see ``--help``)."
    )
    return main


# -- plots ------------------------------------------------------------------------------------------
def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_time_vs_n(ax, cases, styles, *, n2_through=None, nlogn_through=None, size="n", scale=1e3):
    """One log-log panel of time against size: median per method, with its min-max band.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    cases : list of dict
        Each with ``size`` and ``"times_s"``: method name -> :func:`summary` of seconds.
    styles : dict of str to (label, color, format)
        The methods to draw, in legend order; a method the cases lack is skipped.
    n2_through, nlogn_through : str, optional
        Draw a grey guide ∝ n² (respectively ∝ n log n) through this method's first point.
    size : str
        Key of the size in each case.
    scale : float
        Factor from seconds to the plotted unit (1e3: milliseconds).
    """
    import matplotlib.ticker

    cases = sorted(cases, key=lambda c: c[size])
    ns = [float(c[size]) for c in cases]
    for name, (label, color, fmt) in styles.items():
        if any(name not in c["times_s"] for c in cases):
            continue
        med, lo, hi = ([c["times_s"][name][key] * scale for c in cases] for key in ("median", "min", "max"))
        ax.plot(ns, med, fmt, color=color, label=label, ms=4)
        ax.fill_between(ns, lo, hi, color=color, alpha=0.15, lw=0)
    # Guides: the growth a dense GEMM (n²) and an FFT product (n log n) would follow from there.
    if n2_through in cases[0]["times_s"]:
        t0 = cases[0]["times_s"][n2_through]["median"] * scale
        ax.plot(ns, [t0 * (n / ns[0]) ** 2 for n in ns], ":", color="grey", lw=1, label="∝ n²")
    if nlogn_through in cases[0]["times_s"]:
        t0 = cases[0]["times_s"][nlogn_through]["median"] * scale
        ax.plot(ns, [t0 * n * math.log2(n) / (ns[0] * math.log2(ns[0])) for n in ns], "-.", color="grey",
                lw=1, label="∝ n log n")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(ns)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    # Labels at 1, 2 and 5 per decade: a panel spanning less than a decade still gets some.
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.grid(True, which="both", alpha=0.3)


def plot_time_grid(path, grid, styles, *, title, xlabel, ylabel, n2_through=None, nlogn_through=None,
                   legend_columns=4):
    """A grid of :func:`plot_time_vs_n` panels with one legend, saved to ``path``.

    Parameters
    ----------
    path : path-like
        PNG to write.
    grid : list of list of (str, list of dict)
        Rows of panels, each ``(panel title, cases)``; a panel without cases is left out.
    styles : dict
        As for :func:`plot_time_vs_n`.
    title, xlabel, ylabel : str
        Figure title, x label (bottom row) and y label (first column).
    n2_through, nlogn_through : str, optional
        As for :func:`plot_time_vs_n`.
    legend_columns : int
        Legend entries per row.
    """
    plt = pyplot()
    rows, columns = len(grid), max(len(row) for row in grid)
    fig, axes = plt.subplots(rows, columns, figsize=(3.7 * columns + 0.4, 3.3 * rows + 0.8), squeeze=False)
    for i, row in enumerate(grid):
        for j, (panel_title, cases) in enumerate(row):
            ax = axes[i][j]
            if not cases:
                ax.set_visible(False)
                continue
            plot_time_vs_n(ax, cases, styles, n2_through=n2_through, nlogn_through=nlogn_through)
            ax.set_title(panel_title, fontsize=9)
            if i == rows - 1:
                ax.set_xlabel(xlabel)
            if j == 0:
                ax.set_ylabel(ylabel)
    finish_figure(fig, title, path, legend_columns)


def finish_figure(fig, title, path, legend_columns=4):
    """One legend under the panels (each label once), a title, then save ``path`` and close.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    title : str
        Figure title (may hold a line break).
    path : path-like
        PNG to write.
    legend_columns : int
        Legend entries per row.
    """
    handles = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    rows = math.ceil(len(handles) / legend_columns) if handles else 0
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=min(legend_columns, len(handles)),
                   fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=9)
    # Room for the legend rows (about 0.2 inch each) below; tight_layout makes room for the title.
    fig.tight_layout(rect=(0, (0.05 + 0.2 * rows) / fig.get_size_inches()[1], 1, 1))
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
