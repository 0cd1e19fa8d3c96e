/* mpi_train.c - MPI for `smallmind train` (see mpi_train.h). */
#include "mpi/mpi_train.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>

int sm_mpi_start(int *argc, char ***argv, int *rank, int *size) {
    /* Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE; PMI/PMIx launchers (MPICH's
     * hydra, Slurm's srun) set PMI_SIZE or PMIX_RANK */
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") && !getenv("PMIX_RANK")) return 0;
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return 0;
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    return 1;
}

int sm_mpi_allreduce(void *user, float *data, size_t n) {
    sm_mpi_stats *st = user;
    double t0 = MPI_Wtime();
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return rc;
    double t1 = MPI_Wtime();
    int gradient = n > 1;   /* not a loss */
    if (st && gradient) {
        st->wait_seconds += t1 - t0;
        st->calls++;
        st->floats = n;
    }
    while (n > 0) {
        int k = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        if ((rc = MPI_Allreduce(MPI_IN_PLACE, data, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD)) != MPI_SUCCESS) return rc;
        data += k;
        n -= (size_t)k;
    }
    if (st && gradient) st->transfer_seconds += MPI_Wtime() - t1;
    return 0;
}

void sm_mpi_finish(int failed) {
    if (failed) MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Finalize();
}
