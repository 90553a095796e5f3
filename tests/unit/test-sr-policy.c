/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the pre-copy policy of a live save (sr__precopy_decide
 * in saverestore/sr-save.c, declared in sr.h).
 *
 * The policy is a pure function of the policy settings and the state
 * after a pass, so each test sets one criterion and checks the decision
 * on both sides of its threshold.  A zeroed policy must be Xen's
 * simple_precopy_policy: stop when fewer than 50 pages are dirty or
 * after 5 passes (the full one included), never abort.
 */
#include "harness.h"
#include "sr.h"

static enum sr__precopy_decision decide(const struct sr_precopy_policy *p,
                                        unsigned int iteration,
                                        bool dirty_known, uint64_t dirty,
                                        uint64_t throughput,
                                        uint64_t elapsed_ms)
{
    struct sr__precopy_state s = {
        .iteration = iteration,
        .dirty_known = dirty_known,
        .dirty_pages = dirty,
        .throughput = throughput,
        .elapsed_ms = elapsed_ms,
    };

    return sr__precopy_decide(p, &s);
}

TEST(xen_default_stops_below_50_dirty_pages)
{
    struct sr_precopy_policy p = { 0 };

    ASSERT_EQ(decide(&p, 1, true, 49, 0, 0), SR__PRECOPY_STOP_AND_COPY);
    ASSERT_EQ(decide(&p, 1, true, 50, 0, 0), SR__PRECOPY_CONTINUE);
    ASSERT_EQ(decide(&p, 1, true, 0, 0, 0), SR__PRECOPY_STOP_AND_COPY);
}

TEST(xen_default_stops_after_5_passes)
{
    struct sr_precopy_policy p = { 0 };

    ASSERT_EQ(decide(&p, 4, true, 100000, 0, 0), SR__PRECOPY_CONTINUE);
    ASSERT_EQ(decide(&p, 4, false, 0, 0, 0), SR__PRECOPY_CONTINUE);
    ASSERT_EQ(decide(&p, 5, false, 0, 0, 0), SR__PRECOPY_STOP_AND_COPY);
    ASSERT_EQ(decide(&p, 5, true, 100000, 0, 0),
              SR__PRECOPY_STOP_AND_COPY);
}

TEST(unknown_dirty_set_never_stops_on_the_target)
{
    struct sr_precopy_policy p = { .target_dirty_pages = 1000 };

    /* Before the CLEAN the dirty set is unknown: only counts matter. */
    ASSERT_EQ(decide(&p, 1, false, 0, 1, 0), SR__PRECOPY_CONTINUE);
}

TEST(policy_fields_override_the_defaults)
{
    struct sr_precopy_policy p = { .max_iterations = 2,
                                   .target_dirty_pages = 10 };

    ASSERT_EQ(decide(&p, 1, true, 10, 0, 0), SR__PRECOPY_CONTINUE);
    ASSERT_EQ(decide(&p, 1, true, 9, 0, 0), SR__PRECOPY_STOP_AND_COPY);
    ASSERT_EQ(decide(&p, 2, true, 1000, 0, 0), SR__PRECOPY_STOP_AND_COPY);
}

TEST(max_downtime_uses_the_measured_throughput)
{
    /* 1000 dirty pages = 4096000 bytes: 100 ms at 40960000 bytes/s. */
    struct sr_precopy_policy p = { .max_iterations = 100,
                                   .target_dirty_pages = 1,
                                   .max_downtime_ms = 100 };

    ASSERT_EQ(sr__expected_downtime_ms(1000, 40960000), 100);
    ASSERT_EQ(sr__expected_downtime_ms(1000, 0), 0);
    ASSERT_EQ(decide(&p, 1, true, 1000, 40960000, 0),
              SR__PRECOPY_STOP_AND_COPY);
    ASSERT_EQ(decide(&p, 1, true, 1011, 40960000, 0),
              SR__PRECOPY_CONTINUE);
    /* No throughput measured yet: the criterion cannot hold. */
    ASSERT_EQ(decide(&p, 1, true, 1000, 0, 0), SR__PRECOPY_CONTINUE);
    p.max_downtime_ms = 0;
    ASSERT_EQ(decide(&p, 1, true, 1, 40960000, 0), SR__PRECOPY_CONTINUE);
}

TEST(timeout_aborts_or_forces)
{
    struct sr_precopy_policy p = { .timeout_ms = 500 };

    ASSERT_EQ(decide(&p, 1, true, 100000, 0, 499), SR__PRECOPY_CONTINUE);
    ASSERT_EQ(decide(&p, 1, true, 100000, 0, 500), SR__PRECOPY_ABORT);
    ASSERT_EQ(decide(&p, 1, false, 0, 0, 501), SR__PRECOPY_ABORT);
    /* The timeout wins over a stop that would also apply. */
    ASSERT_EQ(decide(&p, 9, true, 0, 0, 500), SR__PRECOPY_ABORT);
    ASSERT(!sr__precopy_timed_out(&p, 499));
    ASSERT(sr__precopy_timed_out(&p, 500));
    p.timeout_action = SR_TIMEOUT_FORCE;
    ASSERT_EQ(decide(&p, 1, true, 100000, 0, 500),
              SR__PRECOPY_STOP_AND_COPY);
    p.timeout_ms = 0;
    ASSERT(!sr__precopy_timed_out(&p, UINT64_MAX));
    ASSERT_EQ(decide(&p, 1, true, 100000, 0, UINT64_MAX),
              SR__PRECOPY_CONTINUE);
}

TEST(expected_downtime_does_not_overflow)
{
    /* 2^40 pages at 1 byte/s: far beyond 64 bits before the division. */
    ASSERT_HEX(sr__expected_downtime_ms(1ULL << 40, 1ULL << 52),
               (uint64_t)((1ULL << 40) * 4096ULL / (1ULL << 52) * 1000));
}

TEST(throttle_off_unless_asked_and_only_when_not_converging)
{
    struct sr_precopy_policy p = { 0 };

    /* A zeroed policy (Xen's, and xl save's) never throttles. */
    ASSERT_EQ(sr__throttle_next(&p, 0, 1ULL << 40, 1), 0);
    p.throttle_initial = 20;
    p.throttle_increment = 10;
    /* QEMU's trigger: dirtied more than half of what the pass sent. */
    ASSERT_EQ(sr__throttle_next(&p, 0, 500, 1000), 0);
    ASSERT_EQ(sr__throttle_next(&p, 0, 501, 1000), 20);
    ASSERT_EQ(sr__throttle_next(&p, 30, 500, 1000), 30);
}

TEST(throttle_rises_by_the_increment_to_the_maximum)
{
    struct sr_precopy_policy p = { .throttle_initial = 20,
                                   .throttle_increment = 10 };

    ASSERT_EQ(sr__throttle_next(&p, 20, 2, 1), 30);
    ASSERT_EQ(sr__throttle_next(&p, 90, 2, 1), 99);     /* default max */
    ASSERT_EQ(sr__throttle_next(&p, 99, 2, 1), 99);
    p.throttle_max = 50;
    ASSERT_EQ(sr__throttle_next(&p, 45, 2, 1), 50);
    ASSERT_EQ(sr__throttle_next(&p, 50, 2, 1), 50);
    /* Never above what the hypervisor allows. */
    p.throttle_max = 200;
    ASSERT_EQ(sr__throttle_next(&p, 95, 2, 1), 99);
    /* An increment of 0 holds it at the initial step. */
    p.throttle_increment = 0;
    ASSERT_EQ(sr__throttle_next(&p, 20, 2, 1), 20);
}
