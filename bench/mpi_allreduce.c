/* mpi_allreduce.c - the cost of one gradient all-reduce on its own: the
 * median time of MPI_Allreduce (MPI_SUM, in place) of N floats over the
 * processes, after a barrier, for bench/mpi_train.sh.
 *   mpicc -O2 -o mpi_allreduce bench/mpi_allreduce.c
 *   mpirun -np 2 ./mpi_allreduce N [REPEATS] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int reps = argc > 2 ? atoi(argv[2]) : 50;
    float *buf = malloc(sizeof(float) * (size_t)n);
    double *t = malloc(sizeof(double) * (size_t)reps);
    for (long i = 0; i < n; i++) buf[i] = (float)(i % 7) * 1e-3f;
    for (int r = 0; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        t[r] = MPI_Wtime() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    if (rank == 0)
        printf("MPI_Allreduce of %ld floats (%.1f MB) over %d processes: median %.3f ms, best %.3f ms (%d runs)\n", n,
               n * 4e-6, size, t[reps / 2] * 1e3, t[0] * 1e3, reps);
    free(buf);
    free(t);
    MPI_Finalize();
    return 0;
}
