# Shared helpers for the job scripts (sourced, not run). Plain bash; no python/jq needed.
# shellcheck shell=bash

# The MPI implementation a binary is linked against: openmpi, mpich or unknown.
# (MPICH-ABI libraries such as Intel MPI also report libmpi.so.12 and count as mpich.)
vq_mpi_flavour() {
  local libs
  libs=$(ldd "$1" 2>/dev/null | awk '/libmpi/ {print $1}')
  case "$libs" in
    *libmpich*|*libmpi.so.12*) echo mpich ;;
    *libmpi.so*) echo openmpi ;;
    *) echo unknown ;;
  esac
}

# The MPI shared library a binary resolves to, e.g. "libmpi.so.40 => /usr/lib/.../libmpi.so.40".
vq_mpi_library() {
  ldd "$1" 2>/dev/null | awk '/libmpi/ {print $1, $2, $3; exit}'
}

# First line of the launcher's version text ("mpirun (Open MPI) 4.1.4", "HYDRA build details: ...").
vq_launcher_version() {
  local out
  out=$("$1" --version 2>&1 | grep -m1 -E '[0-9]+\.[0-9]+' | sed -E 's/[[:space:]]+/ /g; s/^ //' || true)
  echo "${out:-unknown}"
}

# Version of the MPI implementation installed for a flavour ("Open MPI v4.1.4", "MPICH 4.0.2").
vq_mpi_version() {
  local v=""
  case "$1" in
    openmpi) v=$(ompi_info --version 2>/dev/null | head -n1) ;;
    mpich) v=$( (mpichversion 2>/dev/null || mpichversion.mpich 2>/dev/null) | head -n1)
           [ -n "$v" ] || v=$(mpiexec.hydra --version 2>/dev/null | grep -m1 -i 'version') ;;
  esac
  echo "${v:-unknown}" | sed -E 's/[[:space:]]+/ /g'
}

# Read a number/bool field from a flat position in summary.json without a JSON parser:
# vq_json_field FILE world_size -> 4
vq_json_field() {
  grep -oE "\"$2\"[[:space:]]*:[[:space:]]*[^,}[:space:]]+" "$1" 2>/dev/null | head -n1 |
    sed -E 's/.*:[[:space:]]*//; s/"//g'
}

# vq_record_run OUTDIR LAUNCHER_DESCRIPTION BIN CONFIG -- COMMAND...
# Writes OUTDIR/launch.txt (what ran, where, which MPI, which commit), OUTDIR/nodes.txt,
# OUTDIR/env.txt (launcher-relevant environment) and a copy of the input config.
vq_record_run() {
  local out=$1 launcher=$2 bin=$3 config=$4 root commit dirty nodes
  shift 5
  root=${VQSGD_ROOT:-.}
  mkdir -p "$out"
  commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
  dirty=$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | head -c1)
  [ -n "$dirty" ] && commit="$commit (uncommitted changes)"
  if [ -n "${SLURM_JOB_NODELIST:-}" ]; then
    nodes=$(scontrol show hostnames "$SLURM_JOB_NODELIST" 2>/dev/null || echo "$SLURM_JOB_NODELIST")
  elif [ -n "${VQSGD_HOSTFILE:-}" ]; then
    nodes=$(awk '!/^[[:space:]]*(#|$)/ {sub(/[: ].*/, "", $1); print $1}' "$VQSGD_HOSTFILE")
  else
    nodes=$(hostname)
  fi
  printf '%s\n' "$nodes" > "$out/nodes.txt"
  cp "$config" "$out/config.input.toml" 2>/dev/null || true
  {
    echo "started: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "submit_host: ${SLURM_SUBMIT_HOST:-$(hostname)}"
    echo "batch_host: $(hostname)"
    echo "launcher: $launcher"
    echo "command: $(printf '%q ' "$@")"
    [ -n "${VQSGD_SUBMIT_CMD:-}" ] && echo "submitted_with: $VQSGD_SUBMIT_CMD"
    echo "config: $config"
    echo "git_commit: $commit"
    echo "binary: $bin"
    echo "mpi_implementation: $(vq_mpi_flavour "$bin")"
    echo "mpi_library: $(vq_mpi_library "$bin")"
    echo "mpi_version: $(vq_mpi_version "$(vq_mpi_flavour "$bin")")"
    echo "mpi_launcher_version: $(vq_launcher_version "$1")"
    echo "system: ${VQSGD_SYSTEM:-none}"
    if [ -n "${SLURM_JOB_ID:-}" ]; then
      echo "slurm_job_id: $SLURM_JOB_ID"
      echo "slurm_version: $(sinfo --version 2>/dev/null || echo unknown)"
      echo "slurm_nodelist: ${SLURM_JOB_NODELIST:-}"
      echo "slurm_ntasks: ${SLURM_NTASKS:-}"
      echo "slurm_tasks_per_node: ${SLURM_TASKS_PER_NODE:-}"
      echo "slurm_partition: ${SLURM_JOB_PARTITION:-}"
    fi
    echo "nodes: $(paste -sd, "$out/nodes.txt")"
  } > "$out/launch.txt"
  env | grep -E '^(SLURM_|OMPI_|PMIX_|UCX_|MPIR_|HYDRA_|I_MPI_|VQSGD_|RUST_LOG|OMP_NUM_THREADS|LD_LIBRARY_PATH|PATH=)' |
    grep -vE '^(SLURM_JOB_ACCOUNT|[A-Z_]*(TOKEN|SECRET|PASSWORD|KEY)[A-Z_]*)=' | sort > "$out/env.txt" || true
  if [ -n "${SLURM_JOB_ID:-}" ]; then
    scontrol show job "$SLURM_JOB_ID" > "$out/job.txt" 2>/dev/null || true
  fi
}

# Exit codes of `vqsgd train` (src/train.rs): stopped for a signal after a checkpoint, and
# stopped for a non-finite loss or gradient after a checkpoint.
VQ_EXIT_PREEMPTED=3
VQ_EXIT_NUMERICAL=4
# Exit codes of the job scripts' own checks (distinct from vqsgd's).
VQ_EXIT_NO_SUMMARY=65
VQ_EXIT_WORLD_MISMATCH=66

# vq_finish_run OUTDIR RC EXPECTED_WORLD_SIZE: append the outcome to launch.txt and check that
# the job really ran as one MPI world (a PMI mismatch starts N singletons that all "succeed").
# Returns the exit status the caller should exit with.
vq_finish_run() {
  local out=$1 rc=$2 want=$3 got agree
  echo "finished: $(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$out/launch.txt"
  echo "exit_code: $rc" >> "$out/launch.txt"
  [ "$rc" -eq 0 ] || return "$rc"
  if [ ! -f "$out/summary.json" ]; then
    echo "vqsgd job: run exited 0 but $out/summary.json is missing" >&2
    return "$VQ_EXIT_NO_SUMMARY"
  fi
  got=$(vq_json_field "$out/summary.json" world_size)
  agree=$(vq_json_field "$out/summary.json" ranks_agree)
  if [ -n "$want" ] && [ "$got" != "$want" ]; then
    echo "vqsgd job: summary.json says world_size=$got but $want tasks were launched;" \
         "the MPI library and the launcher's PMI do not match (srun --mpi=pmix for Open MPI," \
         "--mpi=pmi2 for MPICH)" >&2
    return "$VQ_EXIT_WORLD_MISMATCH"
  fi
  echo "vqsgd job: world_size=$got ranks_agree=$agree results in $out"
}

# Load jobs/systems/NAME.sh (variables SYS_*, optional function system_env).
vq_load_system() {
  local f=${VQSGD_ROOT:-.}/jobs/systems/$1.sh
  [ -f "$f" ] || { echo "no system file $f (see jobs/systems/)" >&2; return 2; }
  # shellcheck source=/dev/null
  . "$f"
}
