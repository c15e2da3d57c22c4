/* dnnl_matmul.c: see dnnl_matmul.h. oneDNN caches primitives by descriptor, so one per call costs a lookup. */
#include "autograd/cpu/dnnl_matmul.h"

#ifdef QB_HAVE_DNNL
#define DNNL_TRY(call)                        \
    do {                                      \
        if ((call) != dnnl_success) goto out; \
    } while (0)

int qb_cpu_dnnl_matmul(const dnnl_memory_desc_t *a_md, const void *a, const dnnl_memory_desc_t *b_md, const void *b,
                       const dnnl_memory_desc_t *c_md, void *c, const_dnnl_primitive_attr_t attr) {
    int rc = -1;
    dnnl_engine_t eng = NULL;
    dnnl_stream_t stream = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t mem[3] = {NULL, NULL, NULL};
    dnnl_matmul_desc_t desc;
    DNNL_TRY(dnnl_matmul_desc_init(&desc, a_md, b_md, NULL, c_md));
    DNNL_TRY(dnnl_engine_create(&eng, dnnl_cpu, 0));
    DNNL_TRY(dnnl_stream_create(&stream, eng, dnnl_stream_default_flags));
    DNNL_TRY(dnnl_primitive_desc_create(&pd, &desc, attr, eng, NULL));
    DNNL_TRY(dnnl_primitive_create(&prim, pd));
    DNNL_TRY(dnnl_memory_create(&mem[0], a_md, eng, (void *)a));
    DNNL_TRY(dnnl_memory_create(&mem[1], b_md, eng, (void *)b));
    DNNL_TRY(dnnl_memory_create(&mem[2], c_md, eng, c));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, mem[0]}, {DNNL_ARG_WEIGHTS, mem[1]}, {DNNL_ARG_DST, mem[2]}};
    DNNL_TRY(dnnl_primitive_execute(prim, stream, 3, args));
    DNNL_TRY(dnnl_stream_wait(stream));
    rc = 0;
out:
    for (int i = 0; i < 3; i++)
        if (mem[i]) dnnl_memory_destroy(mem[i]);
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (stream) dnnl_stream_destroy(stream);
    if (eng) dnnl_engine_destroy(eng);
    return rc;
}
#endif
