"""One table: DER and speaker-count error of `stream diarize` on every set, online at 0.5 / 2 / 5 s and refined,
with pyannote 3.1 offline and diart (0.5 / 5 s) from the same files next to them.

Sets: ``ami`` (the 12 AMI clips, tune), ``pyaa`` (2 clips, report), ``sim-tune`` and ``sim-report`` (the simulated
halves, ``bench/simulate_meetings.py``), optionally ``sim-long`` (the 60-minute meeting, report).
ovmiss: reference speaker-time in overlap (>= 2 speakers) that the hypothesis misses, % (`overlap_miss`).
DER: pyannote.metrics, no collar, overlap scored, the set's ``reference.uem`` applied (`nodes/diarization/evaluate.py`,
as `stream eval der`), pooled over the set's files (NIST: summed durations), with missed / false alarm / confusion.
Speakers: |found - true| per file; pooled rows give the % of files exact, % within +-1 and the worst file.
Per-file rows are printed for the tune sets (ami, sim-tune) only: the protocol never looks at per-file results of
a report set while tuning (``--per-file`` shows them, for the final report).

The models run once per file (`diarize_file_at`): the three latencies and the refinement share its windows; two
files at a time, as `stream diarize`. Peer rows come from the hypotheses ``bench/diarization_peers.py`` cached
(a row computed on fewer files than the set has says so in its ``files`` column; ``--common`` runs and scores a set
only on the files every cached peer has, while the peers' caches are still filling).

    nice -n 10 .venv/bin/python bench/diarization_der.py [--sets ami pyaa sim-tune sim-report sim-long]
        [--sim /work/simdata] [--out DIR (keep our RTTMs)] [--kept DIR (score those instead of running)]
        [--windows DIR (keep / replay model outputs)]
        [--per-file] [--common] [--resume (with --out: go on after an interruption)]
        [--segmentation WEIGHTS (fine-tuned, `stream train-segmentation`)]
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nodes.diarization.evaluate import overlap_miss, score
from stream.paths import data_dir
from stream.rttm import Turn, read_rttm, read_uem, write_rttm

LATENCIES = (0.5, 2.0, 5.0)
OURS = {f"online {lat:g} s": f"online-{lat:g}" for lat in LATENCIES} | {"refined": "refined"}  # row -> folder
PEERS = {p: p for p in ("pyannote", "diart-0.5", "diart-5")}  # bench/diarization_peers.py systems
TUNE_SETS = ("ami", "sim-tune", "sim-tune-dev", "sim-tune-short")  # per-file rows allowed


def set_folders(sim: Path) -> dict[str, Path]:
    data = data_dir() / "diarization"
    return {"ami": data / "ami", "pyaa": data / "pyaa", "sim-tune": sim / "tune", "sim-report": sim / "report",
            "sim-long": sim / "long", "sim-tune-dev": sim / "tune-dev",
            "sim-tune-short": sim / "tune-short"}


def files_of(folder: Path, references: dict[str, list[Turn]]) -> list[Path]:
    """The folder's audio files that the reference names."""
    from nodes.capture.files import audio_files

    return [p for p in audio_files([folder]) if p.stem in references]


def diarize_sets(sets: dict[str, list[Path]], out: Path | None, windows: Path | None,
                 segmentation: str = "") -> tuple[dict[str, dict[str, dict[str, list[Turn]]]], float, float]:
    """{set: {system: {uri: turns}}} for our systems on each set's files, the wall time and the audio seconds.

    With ``windows``, each file's model outputs are kept there (``<set>/<uri>.pkl``) and a later run replays them
    through everything after the models (same output, seconds instead of minutes): for tuning the clustering.
    """
    from nodes.diarization.files import diarize_file_at, isolate_kept, replay_windows
    from stream.commands.diarize import CONCURRENT_FILES, build

    def one(s: str, path: Path) -> list:
        kept = windows / s / f"{path.stem}.pkl" if windows else None
        if kept and kept.exists():
            with open(kept, "rb") as f:
                duration, records = pickle.load(f)
            if isolate_kept(records, path, analyzer.emb_params, configs[0]):  # kept before they existed
                with open(kept, "wb") as f:
                    pickle.dump((duration, records), f)
            return [replay_windows(records, duration, c, refine=(i == 0)) for i, c in enumerate(configs)]
        results = diarize_file_at(path, analyzer, configs, None, True)
        if kept:
            kept.parent.mkdir(parents=True, exist_ok=True)
            with open(kept, "wb") as f:
                pickle.dump((results[0].duration, results[0].windows), f)
        return results

    config, analyzer, _ = build(argparse.Namespace(latency=LATENCIES[0], max_speakers=None, enrolled=None,
                                                   segmentation=segmentation))
    configs = [dataclasses.replace(config, geometry=dataclasses.replace(config.geometry, latency=lat))
               for lat in LATENCIES]
    names = list(OURS)
    hyps: dict[str, dict[str, dict[str, list[Turn]]]] = {s: {n: {} for n in names} for s in sets}
    jobs = [(s, path) for s, paths in sets.items() for path in paths]
    started, audio = time.perf_counter(), 0.0
    with ThreadPoolExecutor(CONCURRENT_FILES) as pool:
        futures = [(s, path, pool.submit(one, s, path)) for s, path in jobs]
        for s, path, future in futures:
            results = future.result()
            audio += results[0].duration
            outputs = [r.turns for r in results] + [results[0].refined or []]
            for name, turns in zip(names, outputs):
                hyps[s][name][path.stem] = turns
                if out:
                    folder = out / OURS[name] / s
                    folder.mkdir(parents=True, exist_ok=True)
                    write_rttm(folder / f"{path.stem}.rttm", path.stem, turns)
            print(f"  {s} {path.stem}: {results[0].duration / 60:.1f} min, "
                  f"{results[0].elapsed / results[0].duration:.3f} RTF", flush=True)
    return hyps, time.perf_counter() - started, audio


def cached(root: Path, systems: dict[str, str], set_name: str, uris: list[str]) -> dict[str, dict[str, list[Turn]]]:
    """{system: {uri: turns}} from ``root/<folder>/<set>/<uri>.rttm`` (systems with none are left out)."""
    out: dict[str, dict[str, list[Turn]]] = {}
    for system, folder in systems.items():
        paths = {uri: root / folder / set_name / f"{uri}.rttm" for uri in uris}
        found = {uri: read_rttm(p).get(uri, []) for uri, p in paths.items() if p.exists()}
        if found:
            out[system] = found
    return out


def table(references: dict[str, dict[str, list[Turn]]], uems: dict[str, dict[str, list[tuple[float, float]]]],
          hyps: dict[str, dict[str, dict[str, list[Turn]]]], report_files: bool) -> str:
    """Pooled rows per set and system, then per-file rows (file by file, systems in order) for tune sets, or for
    every set with ``report_files``."""
    head = (f"{'set':<11} {'system':<12} {'file':<14} {'DER%':>6} {'miss':>5} {'FA':>5} {'conf':>5} {'ovmiss':>6}  "
            f"{'speakers':<26} {'files':>5}")
    lines = [head, "-" * len(head)]
    for s, systems in hyps.items():
        refs = references[s]
        detail = []
        for k, (system, hyp) in enumerate(systems.items()):
            if not hyp:
                continue
            scored = {uri: refs[uri] for uri in hyp}
            rows = score(scored, hyp, uems[s])
            errors = {uri: abs(_speakers(hyp[uri]) - _speakers(refs[uri])) for uri in scored}
            total = rows[-1]
            missed, overlapped = overlap_miss(scored, hyp, uems[s])
            exact = 100 * sum(e == 0 for e in errors.values()) / len(errors)
            near = 100 * sum(e <= 1 for e in errors.values()) / len(errors)
            worst = max(errors, key=lambda u: errors[u])
            files = f"{len(scored)}" if len(scored) == len(refs) else f"{len(scored)}/{len(refs)}"
            lines.append(f"{s:<11} {system:<12} {'all':<14} {total.der:6.1f} {total.missed:5.1f} "
                         f"{total.false_alarm:5.1f} {total.confusion:5.1f} "
                         f"{f'{100 * missed / overlapped:.1f}' if overlapped else '-':>6}  "
                         f"{f'{exact:.0f}% exact, {near:.0f}% ±1, worst {errors[worst]}':<26} {files:>5}")
            if s in TUNE_SETS or report_files:
                detail += [(r.uri, k, f"{s:<11} {system:<12} {r.uri:<14} {r.der:6.1f} {r.missed:5.1f} "
                                      f"{r.false_alarm:5.1f} {r.confusion:5.1f} {'':>6}  "
                                      f"{_speakers(hyp[r.uri])} of {_speakers(refs[r.uri])}") for r in rows[:-1]]
        lines += [line for _, _, line in sorted(detail)]
        lines.append("")
    return "\n".join(lines)


def _speakers(turns: list[Turn]) -> int:
    return len({t.label for t in turns})


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=["ami", "pyaa", "sim-tune", "sim-report"],
                        choices=["ami", "pyaa", "sim-tune", "sim-tune-dev", "sim-tune-short", "sim-report", "sim-long"])
    parser.add_argument("--sim", type=Path, default=Path("/work/simdata"), help="bench/simulate_meetings.py --out")
    parser.add_argument("--peers", type=Path, help="peer RTTM cache (default SIM/peers)")
    parser.add_argument("--out", type=Path, help="keep our hypothesis RTTMs here (<system>/<set>/<uri>.rttm)")
    parser.add_argument("--resume", action="store_true",
                        help="with --out: files whose RTTMs are all in --out already are scored from there, not run")
    parser.add_argument("--kept", type=Path, help="score our RTTMs kept by an earlier --out instead of running")
    parser.add_argument("--windows", type=Path, help="keep / replay each file's model outputs here (tuning)")
    parser.add_argument("--segmentation", metavar="WEIGHTS", default="",
                        help="fine-tuned segmentation weights (`stream train-segmentation`; default segmentation-3.0)")
    parser.add_argument("--per-file", action="store_true", help="per-file rows for the report sets too")
    parser.add_argument("--common", action="store_true",
                        help="run and score a set only on the files every cached system has (peers still running)")
    args = parser.parse_args()
    folders = {s: f for s, f in set_folders(args.sim).items() if s in args.sets}
    references = {s: read_rttm(f / "reference.rttm") for s, f in folders.items()}
    uems = {s: read_uem(f / "reference.uem") for s, f in folders.items()}
    files = {s: files_of(f, references[s]) for s, f in folders.items()}
    done = {s: cached(args.peers or args.sim / "peers", PEERS, s, [p.stem for p in files[s]]) for s in folders}
    if args.kept:
        done = {s: cached(args.kept, OURS, s, [p.stem for p in files[s]]) | done[s] for s in folders}
    if args.common:
        files = {s: [p for p in paths if all(p.stem in h for h in done[s].values())] for s, paths in files.items()}
        done = {s: {system: {p.stem: h[p.stem] for p in files[s]} for system, h in done[s].items()} for s in folders}
    finished: dict[str, dict[str, dict[str, list[Turn]]]] = {s: {} for s in folders}
    if args.resume and args.out:  # an interrupted run: keep what it wrote
        for s in folders:
            kept = cached(args.out, OURS, s, [p.stem for p in files[s]])
            whole = {p.stem for p in files[s] if len(kept) == len(OURS) and all(p.stem in h for h in kept.values())}
            finished[s] = {system: {u: h[u] for u in whole} for system, h in kept.items()} if whole else {}
            files[s] = [p for p in files[s] if p.stem not in whole]
    hyps, wall, audio = ({s: {} for s in folders}, 0.0, 0.0) if args.kept else \
        diarize_sets(files, args.out, args.windows, args.segmentation)
    for s in folders:
        for system, h in finished[s].items():
            hyps[s][system] |= h
    for s in folders:
        hyps[s] |= done[s]
    print(f"\nDER % (no collar, overlap scored, UEM), pooled per set; speakers = |found - true| per file. "
          + (f"Ours: kept in {args.kept}\n" if args.kept else
             f"Ours: {audio / 60:.0f} min of audio in {wall / 60:.1f} min (RTF {wall / max(audio, 1e-9):.3f}, "
             f"3 latencies + refinement per model pass)\n"))
    print(table(references, uems, hyps, args.per_file))


if __name__ == "__main__":
    run()
