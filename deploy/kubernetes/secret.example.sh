#!/bin/sh
# Create the Secret the CronJobs mount as files at /secrets (never as environment values).
# Each file holds one secret; one trailing newline is ignored.
kubectl create secret generic qualys-connector-secrets \
    --from-file=client.pkcs12=./client.pkcs12 \
    --from-file=pkcs12-password=./pkcs12-password \
    --from-file=qualys-password=./qualys-password \
    --from-file=censys-api-key=./censys-api-key
