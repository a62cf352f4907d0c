/* testutil.c: helpers shared by the test binaries. */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fileio.h"

static char g_tmp[512];

static void cleanup(void) {
    if (g_tmp[0] && !getenv("LQA_KEEP_TMP")) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    }
}

const char *lqa_test_tool(const char *name) {
    static char path[8][512];
    static int next;
    const char *dir = getenv("LQA_BUILD");
    char *p = path[next++ % 8];
    snprintf(p, 512, "%s/%s", dir ? dir : "build", name);
    return p;
}

const char *lqa_test_tmpdir(void) {
    if (!g_tmp[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(g_tmp, sizeof g_tmp, "%s/lqa-test-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(g_tmp)) {
            perror("mkdtemp");
            exit(1);
        }
        atexit(cleanup);
    }
    return g_tmp;
}

int lqa_test_run(lqa_buf *out, const char *fmt, ...) {
    lqa_buf cmd = {0};
    va_list ap;
    va_start(ap, fmt);
    lqa_buf_vprintf(&cmd, fmt, ap);
    va_end(ap);
    lqa_buf_puts(&cmd, " 2>&1");
    FILE *p = popen(cmd.data, "r");
    lqa_buf_free(&cmd);
    if (!p) return -1;
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, p)) > 0)
        if (out) lqa_buf_append(out, chunk, got);
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void lqa_test_write(const char *path, const void *data, size_t n) {
    char *dir = lqa_strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        lqa_mkdir_p(dir, NULL);
    }
    free(dir);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

const char *lqa_test_fixtures(void) {
    const char *d = getenv("LQA_FIXTURES");
    return d ? d : "tests/fixtures";
}

uint64_t lqa_test_seed(void) {
    static uint64_t seed;
    static int done;
    if (!done) {
        const char *s = getenv("LQA_TEST_SEED");
        seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
        fprintf(stderr, "# random seed %llu (set LQA_TEST_SEED to repeat)\n", (unsigned long long)seed);
        done = 1;
    }
    return seed;
}

void lqa_test_cli_not_forged(const char *tool, const char *const *cases, size_t n_cases) {
    char forged[64], value[96], escaped[96], line_start[96];
    snprintf(forged, sizeof forged, "error: forged%08x", (unsigned)(lqa_test_seed() & 0xffffffffu));
    snprintf(value, sizeof value, "'x\n%s'", forged); /* a newline inside the shell's quotes */
    snprintf(escaped, sizeof escaped, "x\\n%s", forged);
    snprintf(line_start, sizeof line_start, "\n%s", forged);
    for (size_t i = 0; i < n_cases; i++) {
        char args[512];
        snprintf(args, sizeof args, cases[i], value);
        lqa_buf out = {0};
        int rc = lqa_test_run(&out, "%s %s", lqa_test_tool(tool), args);
        const char *o = out.data ? out.data : "";
        if (rc == 0) fail_msg("%s %s: exit 0", tool, args);
        if (!strstr(o, escaped)) fail_msg("%s %s: the value is not shown escaped:\n%s", tool, args, o);
        if (strstr(o, line_start) || !strncmp(o, forged, strlen(forged)))
            fail_msg("%s %s: a line begins with the forged text:\n%s", tool, args, o);
        lqa_buf_free(&out);
    }
}
