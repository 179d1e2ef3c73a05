# One image for every wire role (worker-fetch, worker-process, beat, serve).
FROM python:3.11-slim

# Paths are absolute: a container may run with another working directory, and
# /app is root's, so the only place the user writes is /data (beat's schedule).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    WIRE_LOG_FORMAT=json WIRE_DATA_DIR=/data WIRE_SOURCES=/app/config/sources.yaml

# jemalloc instead of glibc's malloc: lxml's trees are built and freed for every
# page, and with jemalloc extraction runs 4-9% faster and the whole pipeline
# 7.5-9.6% (bench/pipeline.py, interleaved runs; docs/design/allocator.md), for
# 2-22 MB more RSS per worker process. The link gives one path on every arch.
# Unpinned: the base image's tag pins the Debian release, whose security
# updates would replace a pinned version and break the build.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends libjemalloc2 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(ls /usr/lib/*-linux-gnu/libjemalloc.so.2)" /usr/local/lib/libjemalloc.so.2
ENV LD_PRELOAD=/usr/local/lib/libjemalloc.so.2

# A fixed numeric user: `runAsNonRoot` can verify it, and a host folder
# mounted on /data can be given to it (chown 10001:10001). A volume mounted on
# /data for the first time takes /data's owner from the image.
RUN groupadd --system --gid 10001 wire \
 && useradd --system --uid 10001 --gid wire --home-dir /app --no-create-home --shell /usr/sbin/nologin wire \
 && mkdir -p /data && chown 10001:10001 /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
RUN pip install . && rm -rf /root/.cache
COPY config ./config

USER 10001:10001
EXPOSE 9108
# Celery warm shutdown on SIGTERM: running tasks finish, unacked ones are redelivered.
STOPSIGNAL SIGTERM
ENTRYPOINT ["wire"]
CMD ["worker"]
