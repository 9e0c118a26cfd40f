#!/bin/sh
# Creates (or brings up to date) Temporal's two PostgreSQL databases with
# temporal-sql-tool (the temporalio/admin-tools image): the job that
# replaces auto-setup. It is safe to run again: setup-schema -v 0.0 leaves an
# existing schema alone and update-schema applies only the newer versions.
set -eu
: "${POSTGRES_SEEDS:?POSTGRES_SEEDS is required}"
: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
PORT=${DB_PORT:-5432}
SCHEMA=/etc/temporal/schema/postgresql/v12
for db in "${DBNAME:-temporal}:temporal" "${VISIBILITY_DBNAME:-temporal_visibility}:visibility"; do
  name=${db%%:*}
  dir=${db##*:}
  tool="temporal-sql-tool --plugin postgres12 --ep $POSTGRES_SEEDS -p $PORT -u $POSTGRES_USER --db $name"
  echo "database $name: create, setup-schema, update-schema ($SCHEMA/$dir/versioned)"
  $tool create || echo "database $name exists"
  $tool setup-schema -v 0.0
  $tool update-schema -d "$SCHEMA/$dir/versioned"
done
echo "Temporal schema up to date"
