# jobs/systems/ci.sh - the throw-away test cluster of scripts/slurm-up.sh: virtual nodes n1..nN
# that share this machine's kernel (tests/slurm.rs submits through this file).
# shellcheck shell=bash disable=SC2034

export SLURM_CONF=${SLURM_CONF:-${VQSGD_SLURM_DIR:-/tmp/vqsgd-slurm}/slurm.conf}

SYS_NODES=2
SYS_TASKS_PER_NODE=2
SYS_TIME=00:05:00
SYS_PARTITION=debug
SYS_ACCOUNT=

system_env() {
  # CI runs as root; Open MPI refuses that unless told.
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  # Virtual nodes share one kernel and one host name: ranks on "different nodes" would pick
  # the same shared-memory segment names and crash. Use TCP over loopback between all ranks.
  export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
  # More ranks than cores: yield instead of busy-polling.
  export OMPI_MCA_mpi_yield_when_idle=1
  # MPICH/UCX: no shared memory across virtual nodes either.
  export UCX_TLS=${UCX_TLS:-tcp,self} UCX_NET_DEVICES=${UCX_NET_DEVICES:-lo}
}
