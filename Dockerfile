# One image for every wire role (worker-fetch, worker-process, beat, serve).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    WIRE_LOG_FORMAT=json WIRE_DATA_DIR=/data

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
