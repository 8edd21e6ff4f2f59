//! After warm-up, spawning takes stacks from the pool: no new slab is mapped.
//! (Its own test binary, so no other test maps slabs meanwhile.)

use greenhub::{joinall, spawn, stack_slabs, Builder};

#[test]
fn spawning_after_warm_up_maps_no_new_stacks() {
    // Warm up: 1,000 greenlets alive at once.
    let gs: Vec<_> = (0..1000).map(|i| spawn(move || i)).collect();
    joinall(&gs);
    let warm = stack_slabs();
    assert!(warm >= 1);
    for round in 0..20 {
        let gs: Vec<_> = (0..1000).map(|i| spawn(move || i * round)).collect();
        joinall(&gs);
        assert_eq!(gs.into_iter().map(|g| g.get().unwrap()).sum::<i32>(), 499_500 * round);
    }
    assert_eq!(stack_slabs(), warm, "a warm spawn mapped memory");
    // A different stack size is its own pool class.
    let g = Builder::new().stack_size(64 * 1024).spawn(|| 1);
    assert_eq!(g.get(), Ok(1));
    let with_small = stack_slabs();
    for _ in 0..100 {
        assert_eq!(Builder::new().stack_size(64 * 1024).spawn(|| 2).get(), Ok(2));
    }
    assert_eq!(stack_slabs(), with_small);
    let method = greenhub::stack_guard_method();
    assert!(method == "madvise" || method == "mprotect", "{method}");
}
