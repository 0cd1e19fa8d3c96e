/* mpi_train.h - data-parallel training over MPI for `smallmind train`
 * (built into the command only when mpicc is present; the library knows
 * nothing of MPI and takes an all-reduce callback, sm_train_params). */
#ifndef SM_MPI_TRAIN_H
#define SM_MPI_TRAIN_H

#include <stddef.h>

/* When the process was started by mpirun/mpiexec (Open MPI's or a PMI
 * launcher's environment), initializes MPI and returns 1 with this
 * process's rank and the number of processes; otherwise 0 and nothing is
 * touched, so a plain `smallmind train` behaves as without MPI. */
int sm_mpi_start(int *argc, char ***argv, int *rank, int *size);

/* What the gradient all-reduces of a run cost: time in MPI_Allreduce
 * itself, and before it in a barrier waiting for the slowest process (so
 * the two are told apart), over the calls of more than one float. */
typedef struct sm_mpi_stats {
    double transfer_seconds, wait_seconds;
    long calls;
    size_t floats;                /* of the last call */
} sm_mpi_stats;

/* sm_train_params.allreduce (user: an sm_mpi_stats or NULL): sums n floats
 * in place across the processes (MPI_Allreduce, MPI_SUM, in pieces below
 * INT_MAX) after an MPI_Barrier. 0 on success. */
int sm_mpi_allreduce(void *user, float *data, size_t n);

/* Ends MPI: MPI_Finalize after success; after a failure MPI_Abort, so that
 * the other processes do not wait for this one forever. */
void sm_mpi_finish(int failed);

#endif
