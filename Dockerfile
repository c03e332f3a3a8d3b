# censys-qualys in a container: `./censys-qualys.sh build`, then `./censys-qualys.sh run` or `once`.
# The settings file is mounted at /config/settings.yaml (read-only) and never copied into the
# image; the saved position lives on the /state volume.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY qualys_connector ./qualys_connector
COPY input_plugins ./input_plugins
RUN pip install . && useradd --system --uid 10001 --home-dir /state censys \
    && mkdir -p /state /config && chown censys /state
USER censys
VOLUME ["/state"]
ENV CQ_SETTINGS=/config/settings.yaml CQ_STATE_DIR=/state
ENTRYPOINT ["censys-qualys"]
# `docker run IMAGE once` runs a single cycle; the default runs every `interval` minutes.
CMD ["run"]
