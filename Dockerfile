# One image for every command of the toolkit: qualys-connector, process-multiple, censys-qualys and the
# three emulators (fmc-emulator, qualys-emulator, censys-emulator). The command is the first word of
# the container's command line:
#   docker run --rm IMAGE qualys-connector -server=fmc.example.com -plugininfo=/config/QualysGuard.yaml \
#       -pkcs12=/secrets/client.pkcs12
#   docker run --rm IMAGE censys-qualys once
# Nothing secret is baked in (.dockerignore keeps settings.yaml, QualysGuard.yaml and *.pkcs12 out):
# mount the configuration read-only at /config, the PKCS#12 file read-only (e.g. /secrets/client.pkcs12)
# and hand passwords over as files through the *_FILE variables (QC_PKCS12_PASSWORD_FILE, ...).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY qualys_connector ./qualys_connector
COPY input_plugins ./input_plugins
RUN pip install --no-cache-dir /src \
    && rm -rf /src \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /var/lib/qualys-connector connector \
    && mkdir -p /var/lib/qualys-connector /run/qualys-connector /config \
    && chown connector:connector /var/lib/qualys-connector /run/qualys-connector \
    && chmod 0700 /var/lib/qualys-connector /run/qualys-connector

# State (delivery records, the censys-qualys position, metrics files) and run locks live on volumes;
# the root file system can then be read-only. QC_LOCK_DIR is where the run locks go.
ENV QC_STATE_DIR=/var/lib/qualys-connector \
    QC_LOCK_DIR=/run/qualys-connector \
    CQ_STATE_DIR=/var/lib/qualys-connector \
    CQ_SETTINGS=/config/settings.yaml
VOLUME ["/var/lib/qualys-connector", "/run/qualys-connector"]

WORKDIR /config
USER 10001:10001
# No ENTRYPOINT: the command names the tool. Without one, qualys-connector shows its version and options.
CMD ["qualys-connector"]
