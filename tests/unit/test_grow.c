/* grow: doubling from the first capacity, contents kept, and a step that
 * cannot be taken leaves the array as it was. */
#include "tests/unit/unit.h"

#include "common/grow.h"

/* Under AddressSanitizer a refused allocation must return NULL, as it
 * does without, rather than end the test. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

static void test_starts_at_first_then_doubles(void **state)
{
    int *v = NULL;
    size_t cap = 0;

    (void)state;
    assert_int_equal(GROW(v, cap, 1, 16), 0);
    assert_non_null(v);
    assert_int_equal(cap, 16);
    for (int i = 0; i < 16; i++)
        v[i] = i;
    assert_int_equal(GROW(v, cap, 17, 16), 0);
    assert_int_equal(cap, 32);
    for (int i = 0; i < 16; i++)
        assert_int_equal(v[i], i);
    /* A need far past the capacity doubles as often as it takes. */
    assert_int_equal(GROW(v, cap, 1000, 16), 0);
    assert_int_equal(cap, 1024);
    assert_int_equal(v[15], 15);
    free(v);
}

static void test_room_enough_changes_nothing(void **state)
{
    int *v = NULL;
    size_t cap = 0;

    (void)state;
    assert_int_equal(GROW(v, cap, 5, 8), 0);
    int *was = v;
    assert_int_equal(GROW(v, cap, 8, 8), 0);
    assert_ptr_equal(v, was);
    assert_int_equal(cap, 8);
    assert_int_equal(GROW(v, cap, 0, 8), 0);
    assert_int_equal(cap, 8);
    free(v);
}

static void test_first_zero_still_grows(void **state)
{
    char *v = NULL;
    size_t cap = 0;

    (void)state;
    assert_int_equal(GROW(v, cap, 3, 0), 0);
    assert_int_equal(cap, 4);
    free(v);
}

static void test_overflow_refused_and_array_kept(void **state)
{
    double *v = NULL;
    size_t cap = 0;

    (void)state;
    assert_int_equal(GROW(v, cap, 4, 4), 0);
    v[3] = 2.5;
    double *was = v;
    /* Doubling cannot reach the need without overflowing a size_t. */
    assert_int_equal(GROW(v, cap, SIZE_MAX, 4), -1);
    assert_ptr_equal(v, was);
    assert_int_equal(cap, 4);
    /* The count fits, the bytes do not. */
    assert_int_equal(GROW(v, cap, SIZE_MAX / 4, 4), -1);
    assert_ptr_equal(v, was);
    assert_int_equal(cap, 4);
    assert_true(v[3] == 2.5);
    free(v);
}

static void test_out_of_memory_refused_and_array_kept(void **state)
{
    char *v = NULL;
    size_t cap = 0;

    (void)state;
    assert_int_equal(GROW(v, cap, 2, 2), 0);
    v[0] = 'x';
    char *was = v;
    /* 4 EiB: no overflow, but more than any allocation can be. */
    assert_int_equal(GROW(v, cap, (size_t)1 << 62, 2), -1);
    assert_ptr_equal(v, was);
    assert_int_equal(cap, 2);
    assert_int_equal(v[0], 'x');
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starts_at_first_then_doubles),
        cmocka_unit_test(test_room_enough_changes_nothing),
        cmocka_unit_test(test_first_zero_still_grows),
        cmocka_unit_test(test_overflow_refused_and_array_kept),
        cmocka_unit_test(test_out_of_memory_refused_and_array_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
