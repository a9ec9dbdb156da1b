# Source this file: environment for running Open MPI jobs on a workstation or in CI.
# Open MPI refuses to run as root unless told (CI containers run as root), and refuses more
# ranks than cores unless oversubscription is allowed; both are harmless on a cluster.
export OMPI_ALLOW_RUN_AS_ROOT=1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
