/* kernels/cuda/emu/emu.cc: the emulator's runtime (see emu.h): the block scheduler with one
 * coroutine per thread (own x86-64 context switch), block and warp barriers, warp shuffles, and the host versions of the CUDA
 * runtime calls and cublasSgemm that kernels/cuda uses. Not part of liblqa: only
 * the emulator's build (mk/cuda.mk) compiles it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cublas_v2.h"
#include "cuda_runtime.h"

#if defined(__SANITIZE_ADDRESS__)
extern "C" void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
extern "C" void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old, size_t *size_old);
extern "C" void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

emu_uint3 emu_threadIdx, emu_blockIdx;
dim3 emu_blockDim, emu_gridDim;
void *emu_dyn_smem;

enum { STACK_BYTES = 256 * 1024, MAX_THREADS = 1024, MAX_WARPS = MAX_THREADS / 32 };
enum fiber_state { RUNNABLE, WAIT_BLOCK, WAIT_WARP, DONE };

/* The context switch: swapcontext makes a signal-mask system call per switch (microseconds
 * here, and the emulator switches millions of times), so a minimal x86-64 switch of the
 * callee-saved registers and the stack pointer stands in: saves them on the current stack,
 * stores the stack pointer in *save_sp, loads load_sp and pops the other context's. */
#if !defined(__x86_64__)
#error "the CUDA emulator's context switch is written for x86-64"
#endif
extern "C" void emu_switch(void **save_sp, void *load_sp);
__asm__(".text\n"
        ".globl emu_switch\n"
        ".type emu_switch,@function\n"
        "emu_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size emu_switch, .-emu_switch\n");

struct fiber {
    void *sp; /* saved stack pointer while switched out */
    char *stack;
    fiber_state state;
    emu_uint3 tid;
    int lane, warp;
};

static fiber fibers[MAX_THREADS];
static int nthreads, cur;
static void *sched_sp;
static const std::function<void(void)> *body;
static float shfl_buf[MAX_WARPS][2][32];
static unsigned warp_gen[MAX_WARPS];
static size_t max_dyn_smem = 48 * 1024;
#if EMU_ASAN
static const void *sched_bottom;
static size_t sched_size;
#endif

static void die(const char *what) {
    fprintf(stderr, "cuda emulator: %s (block %u,%u thread %u)\n", what, emu_blockIdx.x, emu_blockIdx.y,
            emu_threadIdx.x);
    abort();
}

/* From a fiber back to the scheduler. */
static void yield_to_scheduler(fiber_state st) {
    fiber &f = fibers[cur];
    f.state = st;
#if EMU_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, sched_bottom, sched_size);
    emu_switch(&f.sp, sched_sp);
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
    emu_switch(&f.sp, sched_sp);
#endif
}

/* First code a fiber runs (entered by emu_switch's ret); never returns. */
static void fiber_entry(void) {
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(NULL, &sched_bottom, &sched_size);
#endif
    (*body)();
    fibers[cur].state = DONE;
#if EMU_ASAN
    __sanitizer_start_switch_fiber(NULL, sched_bottom, sched_size); /* this fiber ends */
#endif
    void *dead_sp;
    emu_switch(&dead_sp, sched_sp);
    abort(); /* a finished fiber is never resumed */
}

/* A fresh stack whose first emu_switch "returns" into fiber_entry with the ABI's alignment
 * (rsp + 8 a multiple of 16 at function entry). */
static void *fresh_stack(char *stack) {
#if EMU_ASAN
    /* the previous block's fibers never unwound: their frames' redzones are still poisoned */
    __asan_unpoison_memory_region(stack, STACK_BYTES);
#endif
    void **sp = (void **)(((uintptr_t)(stack + STACK_BYTES)) & ~(uintptr_t)15);
    *--sp = NULL;                  /* fiber_entry's would-be return address */
    *--sp = (void *)fiber_entry;   /* popped by emu_switch's ret */
    for (int i = 0; i < 6; i++) *--sp = NULL; /* rbp rbx r12 r13 r14 r15 */
    return sp;
}

void emu_syncthreads(void) { yield_to_scheduler(WAIT_BLOCK); }

float emu_shfl_float(float v, int src_lane) {
    fiber &f = fibers[cur];
    int par = warp_gen[f.warp] & 1; /* two buffers: a lane may shuffle again before the others read */
    shfl_buf[f.warp][par][f.lane] = v;
    yield_to_scheduler(WAIT_WARP);
    return shfl_buf[f.warp][par][src_lane];
}

static void run_fiber(int t) {
    cur = t;
    emu_threadIdx = fibers[t].tid;
#if EMU_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, fibers[t].stack, STACK_BYTES);
    emu_switch(&sched_sp, fibers[t].sp);
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
    emu_switch(&sched_sp, fibers[t].sp);
#endif
}

/* Releases complete barriers; returns whether any was released. */
static bool release_barriers(void) {
    bool released = false;
    int nwarps = (nthreads + 31) / 32, waiting_block = 0, done = 0;
    for (int w = 0; w < nwarps; w++) {
        int lo = w * 32, hi = min(nthreads, lo + 32), waiting = 0, wdone = 0;
        for (int t = lo; t < hi; t++) waiting += fibers[t].state == WAIT_WARP, wdone += fibers[t].state == DONE;
        if (waiting > 0 && waiting + wdone == hi - lo) {
            for (int t = lo; t < hi; t++)
                if (fibers[t].state == WAIT_WARP) fibers[t].state = RUNNABLE;
            warp_gen[w]++;
            released = true;
        }
    }
    for (int t = 0; t < nthreads; t++) waiting_block += fibers[t].state == WAIT_BLOCK, done += fibers[t].state == DONE;
    if (waiting_block > 0 && waiting_block + done == nthreads) {
        for (int t = 0; t < nthreads; t++)
            if (fibers[t].state == WAIT_BLOCK) fibers[t].state = RUNNABLE;
        released = true;
    }
    return released;
}

static void run_block(void) {
    for (int t = 0; t < nthreads; t++) {
        fiber &f = fibers[t];
        if (!f.stack && !(f.stack = (char *)malloc(STACK_BYTES))) die("out of memory");
        f.sp = fresh_stack(f.stack);
        f.state = RUNNABLE;
        f.tid = {(unsigned)t % emu_blockDim.x, (unsigned)t / emu_blockDim.x % emu_blockDim.y,
                 (unsigned)t / (emu_blockDim.x * emu_blockDim.y)};
        f.lane = t % 32;
        f.warp = t / 32;
    }
    memset(warp_gen, 0, sizeof warp_gen);
    for (;;) {
        for (int t = 0; t < nthreads; t++)
            if (fibers[t].state == RUNNABLE) run_fiber(t);
        bool all_done = true;
        for (int t = 0; t < nthreads; t++) all_done &= fibers[t].state == DONE;
        if (all_done) return;
        if (!release_barriers()) die("deadlock: a barrier or shuffle that not every thread of the block/warp reaches");
    }
}

void emu_run(dim3 grid, dim3 block, size_t smem, const std::function<void(void)> &fn) {
    size_t threads = (size_t)block.x * block.y * block.z;
    if (threads == 0 || threads > MAX_THREADS) die("launch: block size must be 1..1024 threads");
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535) die("launch: bad grid size");
    if (smem > max_dyn_smem) die("launch: dynamic shared memory above the limit (cudaFuncSetAttribute missing?)");
    if (smem > 227 * 1024) die("launch: dynamic shared memory above the 227 KiB of an H100");
    nthreads = (int)threads;
    emu_blockDim = block;
    emu_gridDim = grid;
    body = &fn;
    emu_dyn_smem = smem ? malloc(smem) : NULL;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                emu_blockIdx = {x, y, z};
                if (smem) memset(emu_dyn_smem, 0xFF, smem); /* NaN garbage: a read before write shows */
                run_block();
            }
    free(emu_dyn_smem);
    emu_dyn_smem = NULL;
    max_dyn_smem = 48 * 1024; /* the attribute is per kernel: each launch above 48 KiB must set it */
}

/* ---- runtime ---- */

/* The emulated device's memory: 16 GiB, or $LQA_EMU_DEVICE_MIB (tests that need a model not to fit) */
static size_t emu_device_memory_of_env(void) {
    const char *v = getenv("LQA_EMU_DEVICE_MIB");
    long long mib = v ? atoll(v) : 0;
    return mib > 0 ? (size_t)mib << 20 : (size_t)16 << 30;
}
static const size_t emu_device_memory = emu_device_memory_of_env();

const char *cudaGetErrorName(cudaError_t e) {
    return e == cudaSuccess ? "cudaSuccess" : e == cudaErrorMemoryAllocation ? "cudaErrorMemoryAllocation" : "cudaErrorInvalidValue";
}
const char *cudaGetErrorString(cudaError_t e) {
    return e == cudaSuccess ? "no error" : e == cudaErrorMemoryAllocation ? "out of memory" : "invalid argument";
}
cudaError_t cudaGetDeviceCount(int *n) { return *n = 1, cudaSuccess; }
cudaError_t cudaSetDevice(int dev) { return dev == 0 ? cudaSuccess : cudaErrorInvalidValue; } /* one device */
/* Free memory as a GPU of emu_device_memory would report it: what is not allocated. */
static size_t emu_allocated;
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    *total_bytes = emu_device_memory;
    *free_bytes = emu_allocated < emu_device_memory ? emu_device_memory - emu_allocated : 0;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev) {
    (void)dev;
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "CPU emulator");
    p->major = 9, p->multiProcessorCount = 1, p->totalGlobalMem = emu_device_memory;
    return cudaSuccess;
}
/* The most device memory held at once; with $LQA_EMU_PEAK_FILE set it is written there at exit
 * (test_train_emu compares it with `lqa-sft plan`). */
static size_t emu_peak;
static void emu_write_peak(void) {
    FILE *f = fopen(getenv("LQA_EMU_PEAK_FILE"), "w");
    if (f) fprintf(f, "%zu\n", emu_peak), fclose(f);
}
cudaError_t cudaMalloc(void **p, size_t n) {
    static int peak_hooked;
    if (!peak_hooked) {
        peak_hooked = 1;
        const char *pf = getenv("LQA_EMU_PEAK_FILE");
        if (pf && *pf) atexit(emu_write_peak);
    }
    *p = NULL;
    if (n > emu_device_memory) return cudaErrorMemoryAllocation; /* as a GPU of that size would */
    if (n > emu_device_memory - emu_allocated) return cudaErrorMemoryAllocation;
    *p = malloc(n + 16);
    if (!*p) return cudaErrorMemoryAllocation;
    *(size_t *)*p = n; /* the size, 16 bytes before the block (alignment kept), for cudaFree */
    *p = (char *)*p + 16;
    emu_allocated += n;
    if (emu_allocated > emu_peak) emu_peak = emu_allocated;
    memset(*p, 0xFF, n); /* NaN garbage, as uninitialised device memory may hold */
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    char *base = (char *)p - 16;
    emu_allocated -= *(size_t *)base;
    free(base);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    (void)kind;
    memcpy(dst, src, n);
    return cudaSuccess;
}
cudaError_t cudaMemset(void *p, int value, size_t n) { return memset(p, value, n), cudaSuccess; }
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
cudaError_t emu_set_max_dynamic_smem(size_t bytes) {
    if (bytes > 227 * 1024) return cudaErrorInvalidValue;
    max_dyn_smem = bytes;
    return cudaSuccess;
}

/* ---- cuBLAS ---- */

const char *cublasGetStatusName(cublasStatus_t s) { return s ? "CUBLAS_STATUS_INVALID_VALUE" : "CUBLAS_STATUS_SUCCESS"; }
const char *cublasGetStatusString(cublasStatus_t s) { return s ? "invalid value" : "success"; }
cublasStatus_t cublasCreate(cublasHandle_t *h) { return *h = (cublasHandle_t)1, CUBLAS_STATUS_SUCCESS; }

/* Column-major C[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta C, with cuBLAS's argument checks
 * (leading dimensions too small are refused, as the real library does). */
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc) {
    (void)h;
    if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (lda < max(1, ta == CUBLAS_OP_N ? m : k) || ldb < max(1, tb == CUBLAS_OP_N ? k : n) || ldc < max(1, m))
        return CUBLAS_STATUS_INVALID_VALUE;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int l = 0; l < k; l++) {
                float a = ta == CUBLAS_OP_N ? A[i + (size_t)l * lda] : A[l + (size_t)i * lda];
                float b = tb == CUBLAS_OP_N ? B[l + (size_t)j * ldb] : B[j + (size_t)l * ldb];
                s += (double)a * b;
            }
            float *c = &C[i + (size_t)j * ldc];
            *c = (float)(*alpha * s + (*beta == 0.0f ? 0.0 : (double)*beta * *c));
        }
    return CUBLAS_STATUS_SUCCESS;
}
