#!/usr/bin/env sh
# Writes the secrets docker-compose.yml requires (it refuses to start without them) to a .env file:
# random MinIO credentials, a Qdrant API key and a Flower sign-in. Nothing secret is ever committed.
#   deploy/make-env.sh            # writes ./.env (compose reads it), unless it exists
#   deploy/make-env.sh other.env  # writes another file (use: docker compose --env-file other.env ...)
set -eu
out="${1:-.env}"
if [ -e "$out" ]; then echo "$out exists; not overwriting" >&2; exit 1; fi
rand() { python3 -c "import secrets; print(secrets.token_urlsafe($1))"; }
umask 077
cat > "$out" <<ENV
MINIO_ROOT_USER=ordo-$(rand 6)
MINIO_ROOT_PASSWORD=$(rand 24)
QDRANT_API_KEY=$(rand 24)
FLOWER_BASIC_AUTH=ordo:$(rand 18)
ENV
echo "wrote $out (mode 600). First admin key: docker compose run --rm ingest keys create --role admin --name me"
