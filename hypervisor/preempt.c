/* SPDX-License-Identifier: MIT */
/*
 * Preemption of long hypercalls.
 *
 * Xen stops a long hypercall when a softirq is pending and resumes it as a
 * continuation.  ferry asks the same question in the same places, and the
 * answer comes from two sources:
 *
 *  - a budget (host.preempt_every): every Nth check preempts, so the daemon
 *    really does split big validations into continuations;
 *  - injection points set by tests: "preempt before entry k of a level-n
 *    table (optionally: this table), during promotion or demotion", which
 *    reaches every interleaving deterministically.
 *
 * Both hang off `current`; with no current vCPU nothing is preempted.
 */
#include "hv.h"

static bool budget_expired(struct vcpu *v)
{
    if ( !host.preempt_every )
        return false;
    if ( v->preempt_budget == 0 )
        v->preempt_budget = host.preempt_every;
    return --v->preempt_budget == 0;
}

bool hypercall_preempt_check(void)
{
    struct vcpu *v = current;

    return v && budget_expired(v);
}

static bool point_matches(const struct preempt_point *p, unsigned int level,
                          unsigned int idx, mfn_t mfn, unsigned int op)
{
    return p->hits && (p->op & op) && (!p->level || p->level == level) &&
           p->index == idx && (p->mfn == INVALID_MFN || p->mfn == mfn);
}

bool hypercall_preempt_check_pt(unsigned int level, unsigned int idx,
                                mfn_t mfn, unsigned int op)
{
    struct vcpu *v = current;

    if ( !v )
        return false;
    for ( unsigned int i = 0; i < ARRAY_SIZE(v->preempt_inject); i++ )
    {
        struct preempt_point *p = &v->preempt_inject[i];

        if ( point_matches(p, level, idx, mfn, op) )
        {
            p->hits--;
            return true;
        }
    }
    return budget_expired(v);
}

void hv_inject_preempt(struct vcpu *v, unsigned int level, unsigned int idx,
                       mfn_t mfn, unsigned int op, unsigned int hits)
{
    for ( unsigned int i = 0; i < ARRAY_SIZE(v->preempt_inject); i++ )
    {
        struct preempt_point *p = &v->preempt_inject[i];

        if ( p->hits )
            continue;
        p->level = level;
        p->index = idx;
        p->mfn = mfn;
        p->op = op;
        p->hits = hits;
        return;
    }
    BUG();
}

void hv_clear_preempt(struct vcpu *v)
{
    for ( unsigned int i = 0; i < ARRAY_SIZE(v->preempt_inject); i++ )
        v->preempt_inject[i].hits = 0;
}
