//! The Wasm build's memory allocator: power-of-two size classes, one free list per class,
//! fresh blocks cut from pages the module grows.
//!
//! Why not the standard one: std's allocator for wasm32 (dlmalloc) is built for long-lived
//! processes with heavy churn, and its code costs a shopper about 2 KB of gzip download. The
//! SDK's heap is small and bounded (a profile of some KB, an outbox capped at 256 KB), so a
//! simpler scheme fits: every block is a power of two of at least 16 bytes, a freed block
//! goes on its class's list and is handed out again for the next request of that class.
//! Memory is never returned to the browser (Wasm memory cannot shrink anyway), and the worst
//! case wastes under half of each block, which the bounds above keep small.
//!
//! The module runs on one thread (no shared memory, no atomics), so the state needs no lock.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::UnsafeCell;
use core::ptr::null_mut;

const PAGE: usize = 65_536;
/// Smallest block, and the alignment every block has without asking.
const MIN: usize = 16;
/// Classes from 16 bytes (class 0) up to 2 GiB: more than a 32-bit Wasm memory can hold.
const CLASSES: usize = 28;

struct State {
    /// Head of each class's free list (0 = empty); a free block's first word links the next.
    free: [usize; CLASSES],
    /// Next unused byte of the grown region, and its end.
    next: usize,
    end: usize,
}

/// The global allocator of the Wasm build (see the module comment).
pub struct Classes(UnsafeCell<State>);

// SAFETY: wasm32-unknown-unknown without the atomics feature has exactly one thread.
unsafe impl Sync for Classes {}

#[global_allocator]
static ALLOCATOR: Classes = Classes(UnsafeCell::new(State { free: [0; CLASSES], next: 0, end: 0 }));

/// The class serving `layout` and its block size, or None when no block can be that big.
fn class(layout: Layout) -> Option<(usize, usize)> {
    let size = layout.size().max(layout.align()).max(MIN).checked_next_power_of_two()?;
    let class = (size.trailing_zeros() - MIN.trailing_zeros()) as usize;
    (class < CLASSES).then_some((class, size))
}

impl State {
    /// Cuts a fresh block of `size` bytes aligned to `align` from the grown region, growing
    /// the memory when the region is used up. Null when the browser refuses more memory.
    fn cut(&mut self, size: usize, align: usize) -> *mut u8 {
        let fits = |next: usize, end: usize| {
            let start = next.checked_add(align - 1)? & !(align - 1);
            let stop = start.checked_add(size)?;
            (stop <= end).then_some((start, stop))
        };
        if fits(self.next, self.end).is_none() {
            let Some(want) = size.checked_add(align) else { return null_mut() };
            let pages = want.div_ceil(PAGE);
            let old = wasm32::memory_grow(0, pages);
            if old == usize::MAX {
                return null_mut();
            }
            let base = old * PAGE;
            // Continue the current region when the new pages follow it; otherwise (the first
            // growth, or someone else grew the memory) start over at the new pages.
            if base != self.end {
                self.next = base;
            }
            self.end = base + pages * PAGE;
        }
        match fits(self.next, self.end) {
            Some((start, stop)) => {
                self.next = stop;
                start as *mut u8
            }
            None => null_mut(),
        }
    }
}

unsafe impl GlobalAlloc for Classes {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: one thread, and no allocator call re-enters another.
        let state = unsafe { &mut *self.0.get() };
        let Some((class, size)) = class(layout) else { return null_mut() };
        let head = state.free[class];
        // Listed blocks are only known to be 16-aligned, so stricter requests cut a new one.
        if head != 0 && layout.align() <= MIN {
            // SAFETY: `head` is a free block of this class; its first word is the next link.
            state.free[class] = unsafe { *(head as *const usize) };
            return head as *mut u8;
        }
        state.cut(size, layout.align().max(MIN))
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as in `alloc`.
        let state = unsafe { &mut *self.0.get() };
        if let Some((class, _)) = class(layout) {
            // SAFETY: the caller gives back a block of this layout, so of this class, and at
            // least 16 bytes long: room for the link.
            unsafe { *(ptr as *mut usize) = state.free[class] };
            state.free[class] = ptr as usize;
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY (all three calls): the caller guarantees `ptr` was allocated with `layout`,
        // and `new_size` rounded up to `layout.align()` does not overflow.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if class(layout).map(|c| c.0) == class(new_layout).map(|c| c.0) {
            // The block is already big enough (or shrinking within its class).
            return ptr;
        }
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}
