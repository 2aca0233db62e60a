//! The `counters!` macro every layer declares its statistics with.

/// Declares a stats struct of `u64` counters, each followed by a comma (every counter is public), plus nested stats structs after `;`.
/// The struct derives `Debug`, `Clone`, `Copy`, `Default`, `PartialEq` and `Eq`, and gets:
/// - `add`, which the runtime uses to sum the workers' stats;
/// - `add_delta`, which adds what grew between two snapshots (counters only grow);
/// - `for_each`, which names every counter, nested ones as `outer.inner`.
///
/// ```
/// netstack_link::counters! {
///     /// What a toy layer counts.
///     pub struct ToyStats {
///         /// Packets seen.
///         packets, bytes,
///     }
/// }
/// let mut total = ToyStats::default();
/// total.add(&ToyStats { packets: 2, bytes: 80 });
/// let mut names = Vec::new();
/// total.for_each(&mut |name, v| names.push(format!("{name}={v}")));
/// assert_eq!(names, ["packets=2", "bytes=80"]);
/// ```
#[macro_export]
macro_rules! counters {
    (
        $(#[$m:meta])*
        pub struct $name:ident {
            $( $(#[$fm:meta])* $f:ident, )*
            $( ; $( $(#[$nm:meta])* $n:ident : $t:ty, )* )?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fm])* pub $f: u64, )*
            $( $( $(#[$nm])* pub $n: $t, )* )?
        }

        impl $name {
            /// Adds every counter of `other` into `self`.
            pub fn add(&mut self, other: &$name) {
                $( self.$f += other.$f; )*
                $( $( self.$n.add(&other.$n); )* )?
            }

            /// Adds what grew from `old` to `new` (counters only ever grow).
            pub fn add_delta(&mut self, new: &$name, old: &$name) {
                $( self.$f = self.$f.wrapping_add(new.$f.wrapping_sub(old.$f)); )*
                $( $( self.$n.add_delta(&new.$n, &old.$n); )* )?
            }

            /// Calls `f` with every counter's name and value, nested ones as `outer.inner`.
            pub fn for_each(&self, f: &mut dyn FnMut(&str, u64)) {
                $( f(stringify!($f), self.$f); )*
                $( $(
                    self.$n.for_each(&mut |name, v| f(&format!("{}.{name}", stringify!($n)), v));
                )* )?
            }
        }
    };
}
