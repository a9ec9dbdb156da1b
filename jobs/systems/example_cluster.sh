# jobs/systems/example_cluster.sh - template for a real cluster. Copy it to
# jobs/systems/<yours>.sh, adjust, and submit with `jobs/submit.sh <yours> CONFIG.toml`.
# Sourced by jobs/submit.sh (SYS_* become sbatch options; command-line options win) and by
# jobs/train.sbatch inside the job (system_env runs before the launch).
# shellcheck shell=bash disable=SC2034

SYS_NODES=4                 # sbatch --nodes
SYS_TASKS_PER_NODE=8        # sbatch --ntasks-per-node (one rank per core or per socket)
SYS_TIME=02:00:00           # sbatch --time
SYS_PARTITION=compute       # sbatch --partition
SYS_ACCOUNT=myproject       # sbatch --account (leave empty if your site has none)
SYS_SBATCH=(--exclusive --cpus-per-task=1)   # any further sbatch options
SYS_LAUNCH=srun             # srun (direct launch) or mpirun (inside the allocation)
SYS_SRUN_MPI=auto           # auto: pmix for Open MPI, pmi2 for MPICH; or e.g. pmix_v4

system_env() {
  # The same modules the binary was built with (cargo build --release on a login node).
  module purge
  module load gcc/12 openmpi/4.1
  # Example MCA settings: pick the fabric interface, keep the ranks pinned.
  export OMPI_MCA_btl_tcp_if_include=ib0
  export OMP_NUM_THREADS=1
}
