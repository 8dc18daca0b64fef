//! One drop guard for every "give it back unless finished" in the pool.
//!
//! A value held across an await point or a call into user code is wrapped
//! in a [`DropGuard`] with the function that puts it back (or closes it);
//! the normal path takes the value out with [`DropGuard::disarm`], and any
//! other exit (a dropped future, a panic) runs the function. The function
//! is told whether the thread is unwinding, so it can take the path that
//! calls no user code while a panic is in flight.

use std::ops::{Deref, DerefMut};

/// Holds `value` and hands it to `on_drop` unless disarmed first.
pub(crate) struct DropGuard<'a, Ctx: ?Sized, T> {
    context: &'a Ctx,
    value: Option<T>,
    on_drop: fn(&Ctx, T, Unwinding),
}

/// Whether the guard is dropped while the thread unwinds from a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unwinding(pub(crate) bool);

impl<'a, Ctx: ?Sized, T> DropGuard<'a, Ctx, T> {
    /// Arms a guard over `value`.
    #[inline]
    pub(crate) fn new(context: &'a Ctx, value: T, on_drop: fn(&Ctx, T, Unwinding)) -> Self {
        DropGuard {
            context,
            value: Some(value),
            on_drop,
        }
    }

    /// Takes the value out; `on_drop` will not run.
    #[inline]
    pub(crate) fn disarm(mut self) -> T {
        self.value
            .take()
            .expect("a guard holds its value until disarmed")
    }
}

impl<Ctx: ?Sized, T> Deref for DropGuard<'_, Ctx, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        self.value
            .as_ref()
            .expect("a guard holds its value until disarmed")
    }
}

impl<Ctx: ?Sized, T> DerefMut for DropGuard<'_, Ctx, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        self.value
            .as_mut()
            .expect("a guard holds its value until disarmed")
    }
}

impl<Ctx: ?Sized, T> Drop for DropGuard<'_, Ctx, T> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            (self.on_drop)(self.context, value, Unwinding(std::thread::panicking()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{DropGuard, Unwinding};
    use std::cell::Cell;

    fn count(dropped: &Cell<u32>, value: u32, _: Unwinding) {
        dropped.set(dropped.get() + value);
    }

    #[test]
    fn a_dropped_guard_gives_its_value_to_on_drop() {
        let dropped = Cell::new(0);
        drop(DropGuard::new(&dropped, 3, count));
        assert_eq!(dropped.get(), 3);
    }

    #[test]
    fn a_disarmed_guard_runs_nothing() {
        let dropped = Cell::new(0);
        let guard = DropGuard::new(&dropped, 3, count);
        assert_eq!(guard.disarm(), 3);
        assert_eq!(dropped.get(), 0);
    }

    #[test]
    fn a_guard_dropped_by_a_panic_says_so() {
        let seen = std::sync::Mutex::new(None);
        let result = std::panic::catch_unwind(|| {
            let _guard = DropGuard::new(&seen, (), |seen, (), unwinding| {
                *seen.lock().unwrap() = Some(unwinding);
            });
            panic!("user code panicked");
        });
        assert!(result.is_err());
        assert_eq!(*seen.lock().unwrap(), Some(Unwinding(true)));
    }
}
