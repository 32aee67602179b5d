# Runs a graph: by default the demo on the generated test signal. Another graph or source:
#   docker run --rm stream stream run configs/<graph>.toml --source /audio/talk.wav   (with -v .../audio:/audio)
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libportaudio2 libasound2-plugins pulseaudio-utils libsndfile1 ffmpeg sox espeak-ng mosquitto \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY stream/ stream/
COPY nodes/ nodes/
COPY configs/ configs/
RUN pip install --no-cache-dir .

# Assets are mounted, never baked in: -v /path/to/models:/models (and data, for evaluations).
ENV STREAM_MODEL_DIR=/models STREAM_DATA_DIR=/data STREAM_CACHE_DIR=/cache PYTHONUNBUFFERED=1
CMD ["stream", "run", "configs/demo.toml"]
