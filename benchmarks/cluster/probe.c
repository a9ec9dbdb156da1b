/* Calibration probe for the simulated cluster (benchmarks/cluster/run.sh).
 *
 *   probe ALLREDUCE_BYTES ITERS [ALLGATHER_BYTES_PER_RANK]
 *
 * Prints where the ranks run, then for a dense float allreduce of ALLREDUCE_BYTES (and, if
 * given, an allgather of ALLGATHER_BYTES_PER_RANK from every rank) the time per call in ms:
 * each iteration is barrier -> timed collective, the iteration time is the maximum over
 * ranks, and the median/min/max are over ITERS iterations after 2 warm-up calls.
 * Built on the fly with mpicc by run.sh; no dependencies beyond MPI. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef void (*op_fn)(void *ctx);

struct ar { float *in, *out; int n; };
static void do_allreduce(void *c) {
    struct ar *a = c;
    MPI_Allreduce(a->in, a->out, a->n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
struct ag { char *in, *out; int n; };
static void do_allgather(void *c) {
    struct ag *a = c;
    MPI_Allgather(a->in, a->n, MPI_BYTE, a->out, a->n, MPI_BYTE, MPI_COMM_WORLD);
}

static void timeit(const char *what, long bytes, int iters, op_fn f, void *ctx, int rank) {
    double *t = malloc(sizeof(double) * iters);
    for (int i = 0; i < 2; i++) f(ctx);
    for (int i = 0; i < iters; i++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        f(ctx);
        double dt = MPI_Wtime() - t0, mx;
        MPI_Allreduce(&dt, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        t[i] = mx * 1e3;
    }
    qsort(t, iters, sizeof(double), cmp);
    if (rank == 0)
        printf("%s bytes=%ld iters=%d median_ms=%.3f min_ms=%.3f max_ms=%.3f\n", what, bytes,
               iters, t[iters / 2], t[0], t[iters - 1]);
    free(t);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size, len;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 3) {
        if (rank == 0) fprintf(stderr, "usage: probe ALLREDUCE_BYTES ITERS [ALLGATHER_BYTES]\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    long ar_bytes = atol(argv[1]);
    int iters = atoi(argv[2]);
    long ag_bytes = argc > 3 ? atol(argv[3]) : 0;
    if (iters < 1) iters = 1;

    char name[MPI_MAX_PROCESSOR_NAME] = {0};
    MPI_Get_processor_name(name, &len);
    char *names = rank == 0 ? malloc((size_t)size * MPI_MAX_PROCESSOR_NAME) : NULL;
    MPI_Gather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, names, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0,
               MPI_COMM_WORLD);
    if (rank == 0) {
        printf("placement:");
        for (int r = 0; r < size; r++) printf(" %d@%s", r, names + (size_t)r * MPI_MAX_PROCESSOR_NAME);
        printf("\nworld_size=%d\n", size);
        free(names);
    }

    struct ar a = {0};
    a.n = (int)(ar_bytes / 4);
    a.in = malloc(sizeof(float) * a.n);
    a.out = malloc(sizeof(float) * a.n);
    for (int i = 0; i < a.n; i++) a.in[i] = (float)(rank + 1);
    timeit("allreduce", (long)a.n * 4, iters, do_allreduce, &a, rank);
    if (rank == 0 && a.n > 0 && a.out[0] != (float)(size * (size + 1) / 2)) {
        fprintf(stderr, "probe: wrong allreduce result %f\n", a.out[0]);
        MPI_Abort(MPI_COMM_WORLD, 3);
    }
    if (ag_bytes > 0) {
        struct ag g = {0};
        g.n = (int)ag_bytes;
        g.in = calloc(g.n, 1);
        g.out = calloc((size_t)g.n * size, 1);
        timeit("allgather", ag_bytes, iters, do_allgather, &g, rank);
        free(g.in);
        free(g.out);
    }
    free(a.in);
    free(a.out);
    MPI_Finalize();
    return 0;
}
