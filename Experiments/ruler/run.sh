#!/usr/bin/env bash
# ruler: see README.md. Extra options go to kvkit sweep (--shard I/N, --merge, --only JOB, --slurm).
exec "$(dirname "$0")/../sweep.sh" "$(dirname "$0")" "$@"
