# One image for every wire role (worker-fetch, worker-process, beat, serve).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    WIRE_LOG_FORMAT=json WIRE_DATA_DIR=/data

# jemalloc instead of glibc's malloc: lxml's trees are built and freed for every
# page, and with jemalloc extraction runs 4-9% faster and the whole pipeline
# 7.5-9.6% (bench/pipeline.py, interleaved runs; docs/design/allocator.md), for
# 2-22 MB more RSS per worker process. The link gives one path on every arch.
RUN apt-get update && apt-get install -y --no-install-recommends libjemalloc2 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(ls /usr/lib/*-linux-gnu/libjemalloc.so.2)" /usr/local/lib/libjemalloc.so.2
ENV LD_PRELOAD=/usr/local/lib/libjemalloc.so.2

RUN groupadd --system wire && useradd --system --gid wire --home-dir /app --shell /usr/sbin/nologin wire \
 && mkdir -p /data && chown wire:wire /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
RUN pip install . && rm -rf /root/.cache
COPY config ./config

USER wire
EXPOSE 9108
# Celery warm shutdown on SIGTERM: running tasks finish, unacked ones are redelivered.
STOPSIGNAL SIGTERM
ENTRYPOINT ["wire"]
CMD ["worker"]
