# jobs/systems/local.sh - a Slurm on this workstation, e.g. one started with
# `scripts/slurm-up.sh -n 1`, or any single-node Slurm. Sourced by jobs/submit.sh at submit time
# and by jobs/train.sbatch inside the job.
# shellcheck shell=bash disable=SC2034

# Use the cluster from scripts/slurm-up.sh when no other Slurm is configured.
if [ -z "${SLURM_CONF:-}" ] && [ ! -f /etc/slurm/slurm.conf ] &&
   [ -f "${VQSGD_SLURM_DIR:-/tmp/vqsgd-slurm}/slurm.conf" ]; then
  export SLURM_CONF=${VQSGD_SLURM_DIR:-/tmp/vqsgd-slurm}/slurm.conf
fi

SYS_NODES=1
SYS_TASKS_PER_NODE=4
SYS_TIME=00:30:00
SYS_PARTITION=
SYS_ACCOUNT=

system_env() {
  # A workstation job often runs as root and with more ranks than cores.
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}
}
