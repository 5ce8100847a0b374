# A stand-in for the public `postgres` image, for machines that reach no container
# registry (scripts/test-compose): Debian's PostgreSQL on a local Debian base, with the
# part of the official image's contract docker/compose.yaml uses (POSTGRES_USER,
# POSTGRES_DB, POSTGRES_PASSWORD_FILE, the data in /var/lib/postgresql/data, pg_isready).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN mkdir -p /etc/postgresql-common \
 && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data PGHOST=/tmp
USER postgres
STOPSIGNAL SIGINT
ENTRYPOINT ["postgres-entrypoint"]
