//! Declarative templates that stamp out cachebox's seven cache pyclasses.
//!
//! Rules of this crate:
//! - `macro_rules!` only, and no logic: every method body forwards to the generic core type the
//!   caller passes in (`core: CacheCore<Lru>`), so a bug is fixed once, in `src/`.
//! - No `crate::` paths and no `unsafe`: a template names only `::pyo3`, `::std`, its own
//!   `$crate::__private` re-exports and its parameters.
//! - pyo3 reads one `#[pymethods]` block per class, and an attribute macro sees its input
//!   before inner macros expand. So the per-class capabilities (`caps: [peek, ...]`) are spliced
//!   in by a token muncher (`__cache_methods!`) that emits the finished block in one piece.

#[doc(hidden)]
pub mod __private {
    pub use paste;
}

/// Stamps one cache class, its iterator class, and all their methods.
///
/// ```ignore
/// cache_pyclass! {
///     /// docs
///     LRUCache { core: CacheCore<Lru>, iter: CoreIter<Lru>, base: BaseCacheImpl, caps: [init, write, peek] }
/// }
/// ```
///
/// Capabilities (each adds a group of Python methods):
/// - exactly one constructor: `init` (`maxsize, iterable=None`), `init_ttl` (`maxsize, ttl,
///   iterable=None`) or `init_vttl` (`maxsize, iterable=None, ttl=None`);
/// - exactly one write path: `write` or `write_vttl` (the latter takes a per-key `ttl`);
/// - optional: `peek`, `first_last`, `lru_order`, `lfu_order`, `random_key`, `expiring`.
#[macro_export]
macro_rules! cache_pyclass {
    (
        $(#[doc = $doc:literal])*
        $name:ident {
            core: $core:ty,
            iter: $iter:ty,
            base: $base:ident,
            caps: [$($cap:ident),* $(,)?] $(,)?
        }
    ) => {
        $crate::__private::paste::paste! {
            $(#[doc = $doc])*
            #[::pyo3::pyclass(module = "cachebox", extends = $base, frozen, subclass)]
            pub struct $name {
                core: $core,
            }

            #[doc = "Iterator over a `" $name "` (keys, values or items, in the cache's order)."]
            #[::pyo3::pyclass(module = "cachebox", frozen)]
            pub struct [<$name Iterator>] {
                cache: ::pyo3::Py<$name>,
                state: $iter,
            }

            #[::pyo3::pymethods]
            impl [<$name Iterator>] {
                fn __iter__(slf: ::pyo3::PyRef<'_, Self>) -> ::pyo3::PyRef<'_, Self> {
                    slf
                }

                fn __next__(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<Option<::pyo3::Py<::pyo3::PyAny>>> {
                    self.cache.get().core.next(py, &self.state)
                }

                fn __traverse__(&self, visit: ::pyo3::gc::PyVisit<'_>) -> Result<(), ::pyo3::PyTraverseError> {
                    visit.call(&self.cache)
                }
            }
        }
        $crate::__cache_methods! { @munch [$name, $core, $iter, $base] [$($cap),*] [] [] }
    };
}

/// Declares a decorator factory `$name(cache=None, key_maker=None, clear_reuse=False,
/// callback=None, copy_level=None, *, ttl=None)` that forwards to `$build(..., $method)`: `cached` and
/// `cachedmethod` differ only in that flag.
#[macro_export]
macro_rules! decorator_factory {
    ($(#[doc = $doc:literal])* $name:ident -> $ret:ty = $build:path, method = $method:literal) => {
        $(#[doc = $doc])*
        #[::pyo3::pyfunction]
        #[pyo3(
            signature = (cache = None, key_maker = None, clear_reuse = false, callback = None, copy_level = None, *, ttl = None, l2 = None),
            text_signature = "(cache=None, key_maker=None, clear_reuse=False, callback=None, copy_level=1, *, ttl=None, l2=None)"
        )]
        // One parameter per keyword the decorator takes.
        #[allow(clippy::too_many_arguments)]
        pub fn $name(
            py: ::pyo3::Python<'_>,
            cache: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
            key_maker: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
            clear_reuse: bool,
            callback: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
            copy_level: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
            ttl: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
            l2: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
        ) -> ::pyo3::PyResult<$ret> {
            $build(py, cache, key_maker, clear_reuse, callback, copy_level, ttl, l2, $method)
        }
    };
}

/// The token muncher behind `cache_pyclass!`: appends one capability's methods at a time,
/// then emits the class's single `#[pymethods]` block.
///
/// The constructor capability also supplies the `#[pymethods]` attribute itself. pyo3 names
/// locals of the `__init__` slot wrapper with the span of `__init__`'s return type, and
/// resolves them next to its own, which carry the attribute's span; under `macro_rules!`
/// hygiene the two only meet when both tokens come from the same expansion.
#[doc(hidden)]
#[macro_export]
macro_rules! __cache_methods {
    // ---- done: the shared methods plus everything accumulated ----
    (@munch [$name:ident, $core:ty, $iter:ty, $base:ident] [] [$($attr:tt)*] [$($acc:tt)*]) => {
        $crate::__private::paste::paste! {
            $($attr)*
            impl $name {
                /// Creates an unconfigured cache; `__init__` configures it. Keeping the two
                /// apart lets Python subclasses define their own `__init__`.
                #[new]
                #[pyo3(signature = (*_args, **_kwargs))]
                fn __new__(
                    _args: &::pyo3::Bound<'_, ::pyo3::types::PyTuple>,
                    _kwargs: Option<&::pyo3::Bound<'_, ::pyo3::types::PyDict>>,
                ) -> ::pyo3::PyClassInitializer<Self> {
                    ::pyo3::PyClassInitializer::from($base).add_subclass(Self { core: <$core>::unconfigured() })
                }

                /// Caches are mutable, so they are unhashable.
                #[classattr]
                fn __hash__() -> Option<::pyo3::Py<::pyo3::PyAny>> {
                    None
                }

                /// The maximum number of entries (`sys.maxsize` when unbounded).
                #[getter]
                fn maxsize(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<usize> {
                    self.core.read(py, |s| s.limits.maxsize)
                }

                /// The maximum total `__sizeof__` of keys and values (`sys.maxsize` when unlimited).
                #[getter]
                fn maxmemory(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<usize> {
                    self.core.read(py, |s| s.limits.maxmemory)
                }

                /// The eviction listener `on_evict(key, value, cause)`, or `None`.
                #[getter]
                fn on_evict(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<Option<::pyo3::Py<::pyo3::PyAny>>> {
                    self.core.hook(py, false)
                }

                /// The `weigher(key, value)` that sizes entries in place of `__sizeof__`, or `None`.
                #[getter]
                fn weigher(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<Option<::pyo3::Py<::pyo3::PyAny>>> {
                    self.core.hook(py, true)
                }

                fn __len__(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<usize> {
                    self.core.len(py)
                }

                fn __bool__(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<bool> {
                    Ok(!self.core.is_empty(py)?)
                }

                /// Whether the cache holds no live entry.
                fn is_empty(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<bool> {
                    self.core.is_empty(py)
                }

                /// Whether the cache is at `maxsize` entries or `maxmemory` bytes.
                fn is_full(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<bool> {
                    self.core.is_full(py)
                }

                fn __contains__(&self, py: ::pyo3::Python<'_>, key: &::pyo3::Bound<'_, ::pyo3::PyAny>) -> ::pyo3::PyResult<bool> {
                    self.core.contains(py, key)
                }

                fn __getitem__(&self, py: ::pyo3::Python<'_>, key: &::pyo3::Bound<'_, ::pyo3::PyAny>) -> ::pyo3::PyResult<::pyo3::Py<::pyo3::PyAny>> {
                    self.core.getitem(py, key)
                }

                fn __delitem__(&self, py: ::pyo3::Python<'_>, key: &::pyo3::Bound<'_, ::pyo3::PyAny>) -> ::pyo3::PyResult<()> {
                    self.core.delitem(py, key)
                }

                /// The value for `key`, or `default` if it is missing.
                #[pyo3(signature = (key, default = None))]
                fn get(
                    &self,
                    py: ::pyo3::Python<'_>,
                    key: &::pyo3::Bound<'_, ::pyo3::PyAny>,
                    default: Option<::pyo3::Py<::pyo3::PyAny>>,
                ) -> ::pyo3::PyResult<::pyo3::Py<::pyo3::PyAny>> {
                    Ok(self.core.get(py, key)?.unwrap_or_else(|| default.unwrap_or_else(|| py.None())))
                }

                /// Removes `key` and returns its value, or `default` if it is missing.
                #[pyo3(signature = (key, default = None))]
                fn pop(
                    &self,
                    py: ::pyo3::Python<'_>,
                    key: &::pyo3::Bound<'_, ::pyo3::PyAny>,
                    default: Option<::pyo3::Py<::pyo3::PyAny>>,
                ) -> ::pyo3::PyResult<::pyo3::Py<::pyo3::PyAny>> {
                    Ok(match self.core.pop(py, key)? {
                        Some((entry, _)) => entry.value,
                        None => default.unwrap_or_else(|| py.None()),
                    })
                }

                /// Removes and returns the entry the policy would evict next.
                fn popitem(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<(::pyo3::Py<::pyo3::PyAny>, ::pyo3::Py<::pyo3::PyAny>)> {
                    let (entry, _) = self.core.popitem(py)?;
                    Ok((entry.key, entry.value))
                }

                /// Pops up to `n` entries; returns how many were removed.
                fn drain(&self, py: ::pyo3::Python<'_>, n: isize) -> ::pyo3::PyResult<usize> {
                    self.core.drain(py, n)
                }

                /// Removes every entry; `reuse=True` keeps the allocated memory.
                #[pyo3(signature = (*, reuse = false))]
                fn clear(&self, py: ::pyo3::Python<'_>, reuse: bool) -> ::pyo3::PyResult<()> {
                    self.core.clear(py, reuse)
                }

                /// Shrinks the table to the smallest size that holds the entries.
                fn shrink_to_fit(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<()> {
                    self.core.shrink_to_fit(py)
                }

                /// How many entries fit without reallocating.
                fn capacity(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<usize> {
                    self.core.read(py, |s| s.capacity())
                }

                /// The total `__sizeof__` of the stored keys and values.
                fn memory(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<usize> {
                    self.core.read(py, |s| s.memory())
                }

                fn __sizeof__(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<usize> {
                    self.core.read(py, |s| s.allocated_bytes())
                }

                /// An iterator over the keys, in the cache's order.
                fn keys(slf: &::pyo3::Bound<'_, Self>) -> ::pyo3::PyResult<[<$name Iterator>]> {
                    Self::iterator(slf, slf.get().core.iter(slf.py(), <$core>::KEYS)?)
                }

                /// An iterator over the values, in the cache's order.
                fn values(slf: &::pyo3::Bound<'_, Self>) -> ::pyo3::PyResult<[<$name Iterator>]> {
                    Self::iterator(slf, slf.get().core.iter(slf.py(), <$core>::VALUES)?)
                }

                /// An iterator over `(key, value)` pairs, in the cache's order.
                fn items(slf: &::pyo3::Bound<'_, Self>) -> ::pyo3::PyResult<[<$name Iterator>]> {
                    Self::iterator(slf, slf.get().core.iter(slf.py(), <$core>::ITEMS)?)
                }

                fn __iter__(slf: &::pyo3::Bound<'_, Self>) -> ::pyo3::PyResult<[<$name Iterator>]> {
                    Self::iterator(slf, slf.get().core.iter(slf.py(), <$core>::KEYS)?)
                }

                /// A shallow copy: a new cache of the same class with the same entries.
                fn copy<'py>(slf: &::pyo3::Bound<'py, Self>) -> ::pyo3::PyResult<::pyo3::Bound<'py, Self>> {
                    let copy = Self::blank(slf)?;
                    slf.get().core.copy_into(slf.py(), &copy.get().core)?;
                    Ok(copy)
                }

                fn __copy__<'py>(slf: &::pyo3::Bound<'py, Self>) -> ::pyo3::PyResult<::pyo3::Bound<'py, Self>> {
                    Self::copy(slf)
                }

                fn __deepcopy__<'py>(
                    slf: &::pyo3::Bound<'py, Self>,
                    memo: &::pyo3::Bound<'py, ::pyo3::PyAny>,
                ) -> ::pyo3::PyResult<::pyo3::Bound<'py, Self>> {
                    let copy = Self::blank(slf)?;
                    slf.get().core.deepcopy_into(slf.py(), &copy.get().core, memo)?;
                    Ok(copy)
                }

                fn __getstate__(slf: &::pyo3::Bound<'_, Self>) -> ::pyo3::PyResult<::pyo3::Py<::pyo3::types::PyTuple>> {
                    slf.get().core.getstate(slf.as_any())
                }

                fn __setstate__(slf: &::pyo3::Bound<'_, Self>, state: &::pyo3::Bound<'_, ::pyo3::PyAny>) -> ::pyo3::PyResult<()> {
                    slf.get().core.setstate(slf.as_any(), state)
                }

                /// Same class (or a subclass), same limits, same live entries; order and
                /// policy metadata are ignored.
                fn __richcmp__(
                    &self,
                    py: ::pyo3::Python<'_>,
                    other: &::pyo3::Bound<'_, ::pyo3::PyAny>,
                    op: ::pyo3::pyclass::CompareOp,
                ) -> ::pyo3::PyResult<::pyo3::Py<::pyo3::PyAny>> {
                    use ::pyo3::IntoPyObjectExt;
                    let Ok(other) = other.cast::<Self>() else { return Ok(py.NotImplemented()) };
                    let equal = || self.core.equals(py, &other.get().core);
                    match op {
                        ::pyo3::pyclass::CompareOp::Eq => equal()?.into_py_any(py),
                        ::pyo3::pyclass::CompareOp::Ne => (!equal()?).into_py_any(py),
                        _ => Ok(py.NotImplemented()),
                    }
                }

                fn __repr__(slf: &::pyo3::Bound<'_, Self>) -> ::pyo3::PyResult<String> {
                    slf.get().core.repr(slf.as_any())
                }

                fn __traverse__(&self, visit: ::pyo3::gc::PyVisit<'_>) -> Result<(), ::pyo3::PyTraverseError> {
                    self.core.traverse(&visit)
                }

                fn __clear__(&self) {
                    self.core.clear_for_gc();
                }

                $($acc)*
            }

            impl $name {
                /// The generic core, for native callers (the decorators).
                pub fn core(&self) -> &$core {
                    &self.core
                }

                fn iterator(slf: &::pyo3::Bound<'_, Self>, state: $iter) -> ::pyo3::PyResult<[<$name Iterator>]> {
                    Ok([<$name Iterator>] { cache: slf.clone().unbind(), state })
                }

                /// A new, unconfigured instance of `slf`'s exact class (subclasses included).
                fn blank<'py>(slf: &::pyo3::Bound<'py, Self>) -> ::pyo3::PyResult<::pyo3::Bound<'py, Self>> {
                    use ::pyo3::types::PyAnyMethods;
                    let cls = slf.get_type();
                    let obj = cls.call_method1(::pyo3::intern!(slf.py(), "__new__"), (&cls,))?;
                    Ok(obj.cast_into::<Self>()?)
                }
            }
        }
    };

    // ---- constructors ----
    (@munch [$name:ident, $core:ty, $iter:ty, $base:ident] [init $(, $rest:ident)*] [] [$($acc:tt)*]) => {
        $crate::__cache_methods! { @munch [$name, $core, $iter, $base] [$($rest),*] [#[::pyo3::pymethods]] [$($acc)*
            #[pyo3(signature = (maxsize, iterable = None, *, capacity = 0, maxmemory = 0, on_evict = None, weigher = None))]
            #[allow(clippy::too_many_arguments)]
            fn __init__(
                slf: &::pyo3::Bound<'_, Self>,
                maxsize: usize,
                iterable: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
                capacity: usize,
                maxmemory: usize,
                on_evict: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
                weigher: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
            ) -> ::pyo3::PyResult<()> {
                let hooks = <$core>::hooks_arg(on_evict, weigher)?;
                slf.get().core.init(slf.as_any(), None, maxsize, capacity, maxmemory, iterable, None, hooks)
            }
        ] }
    };
    (@munch [$name:ident, $core:ty, $iter:ty, $base:ident] [init_ttl $(, $rest:ident)*] [] [$($acc:tt)*]) => {
        $crate::__cache_methods! { @munch [$name, $core, $iter, $base] [$($rest),*] [#[::pyo3::pymethods]] [$($acc)*
            #[pyo3(signature = (maxsize, ttl, iterable = None, *, capacity = 0, maxmemory = 0, on_evict = None, weigher = None))]
            #[allow(clippy::too_many_arguments)]
            fn __init__(
                slf: &::pyo3::Bound<'_, Self>,
                maxsize: usize,
                ttl: &::pyo3::Bound<'_, ::pyo3::PyAny>,
                iterable: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
                capacity: usize,
                maxmemory: usize,
                on_evict: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
                weigher: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
            ) -> ::pyo3::PyResult<()> {
                let hooks = <$core>::hooks_arg(on_evict, weigher)?;
                let ttl = <$core>::ttl_arg(ttl)?;
                slf.get().core.init(slf.as_any(), Some(ttl), maxsize, capacity, maxmemory, iterable, None, hooks)
            }

            /// The time-to-live of every entry, in seconds.
            #[getter]
            fn ttl(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<f64> {
                self.core.ttl(py)
            }
        ] }
    };
    (@munch [$name:ident, $core:ty, $iter:ty, $base:ident] [init_vttl $(, $rest:ident)*] [] [$($acc:tt)*]) => {
        $crate::__cache_methods! { @munch [$name, $core, $iter, $base] [$($rest),*] [#[::pyo3::pymethods]] [$($acc)*
            #[pyo3(signature = (maxsize, iterable = None, ttl = None, *, capacity = 0, maxmemory = 0, on_evict = None, weigher = None))]
            #[allow(clippy::too_many_arguments)]
            fn __init__(
                slf: &::pyo3::Bound<'_, Self>,
                maxsize: usize,
                iterable: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
                ttl: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
                capacity: usize,
                maxmemory: usize,
                on_evict: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
                weigher: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
            ) -> ::pyo3::PyResult<()> {
                let hooks = <$core>::hooks_arg(on_evict, weigher)?;
                <$core>::vttl_arg(ttl)?;
                slf.get().core.init(slf.as_any(), None, maxsize, capacity, maxmemory, iterable, Some(ttl), hooks)
            }
        ] }
    };

    // ---- write paths ----
    (@munch [$name:ident, $core:ty, $iter:ty, $base:ident] [write $(, $rest:ident)*] [$($attr:tt)*] [$($acc:tt)*]) => {
        $crate::__cache_methods! { @munch [$name, $core, $iter, $base] [$($rest),*] [$($attr)*] [$($acc)*
            /// Sets `key` to `value`; returns the previous value, or `None`.
            fn insert<'py>(
                &self,
                py: ::pyo3::Python<'py>,
                key: &::pyo3::Bound<'_, ::pyo3::PyAny>,
                value: &::pyo3::Bound<'_, ::pyo3::PyAny>,
            ) -> ::pyo3::PyResult<Option<::pyo3::Bound<'py, ::pyo3::PyAny>>> {
                self.core.insert(py, key, value, <$core>::no_meta())
            }

            fn __setitem__(
                &self,
                py: ::pyo3::Python<'_>,
                key: &::pyo3::Bound<'_, ::pyo3::PyAny>,
                value: &::pyo3::Bound<'_, ::pyo3::PyAny>,
            ) -> ::pyo3::PyResult<()> {
                self.core.insert(py, key, value, <$core>::no_meta()).map(drop)
            }

            /// The value of `key` if present; otherwise inserts and returns `default`.
            #[pyo3(signature = (key, default = None))]
            fn setdefault(
                &self,
                py: ::pyo3::Python<'_>,
                key: &::pyo3::Bound<'_, ::pyo3::PyAny>,
                default: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
            ) -> ::pyo3::PyResult<::pyo3::Py<::pyo3::PyAny>> {
                let none = py.None().into_bound(py);
                self.core.setdefault(py, key, default.unwrap_or(&none), <$core>::no_meta())
            }

            /// Inserts the pairs of a mapping or of an iterable of `(key, value)` tuples.
            fn update(slf: &::pyo3::Bound<'_, Self>, iterable: &::pyo3::Bound<'_, ::pyo3::PyAny>) -> ::pyo3::PyResult<()> {
                slf.get().core.update(slf.py(), slf.as_any(), iterable, <$core>::no_meta)
            }
        ] }
    };
    (@munch [$name:ident, $core:ty, $iter:ty, $base:ident] [write_vttl $(, $rest:ident)*] [$($attr:tt)*] [$($acc:tt)*]) => {
        $crate::__cache_methods! { @munch [$name, $core, $iter, $base] [$($rest),*] [$($attr)*] [$($acc)*
            /// Sets `key` to `value`, expiring after `ttl` seconds (`None`: never); returns
            /// the previous value, or `None`.
            #[pyo3(signature = (key, value, ttl = None))]
            fn insert<'py>(
                &self,
                py: ::pyo3::Python<'py>,
                key: &::pyo3::Bound<'_, ::pyo3::PyAny>,
                value: &::pyo3::Bound<'_, ::pyo3::PyAny>,
                ttl: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
            ) -> ::pyo3::PyResult<Option<::pyo3::Bound<'py, ::pyo3::PyAny>>> {
                let ttl = <$core>::vttl_arg(ttl)?;
                self.core.insert(py, key, value, <$core>::expiring(ttl))
            }

            /// `c[key] = value` never expires.
            fn __setitem__(
                &self,
                py: ::pyo3::Python<'_>,
                key: &::pyo3::Bound<'_, ::pyo3::PyAny>,
                value: &::pyo3::Bound<'_, ::pyo3::PyAny>,
            ) -> ::pyo3::PyResult<()> {
                self.core.insert(py, key, value, <$core>::expiring(None)).map(drop)
            }

            /// The value of `key` if present; otherwise inserts `default` with `ttl`.
            #[pyo3(signature = (key, default = None, ttl = None))]
            fn setdefault(
                &self,
                py: ::pyo3::Python<'_>,
                key: &::pyo3::Bound<'_, ::pyo3::PyAny>,
                default: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
                ttl: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
            ) -> ::pyo3::PyResult<::pyo3::Py<::pyo3::PyAny>> {
                let ttl = <$core>::vttl_arg(ttl)?;
                let none = py.None().into_bound(py);
                self.core.setdefault(py, key, default.unwrap_or(&none), <$core>::expiring(ttl))
            }

            /// Inserts the pairs of a mapping or iterable, each expiring after `ttl` seconds.
            #[pyo3(signature = (iterable, ttl = None))]
            fn update(
                slf: &::pyo3::Bound<'_, Self>,
                iterable: &::pyo3::Bound<'_, ::pyo3::PyAny>,
                ttl: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
            ) -> ::pyo3::PyResult<()> {
                let ttl = <$core>::vttl_arg(ttl)?;
                slf.get().core.update(slf.py(), slf.as_any(), iterable, || <$core>::expiring(ttl))
            }
        ] }
    };

    // ---- policy-specific reads ----
    (@munch [$name:ident, $core:ty, $iter:ty, $base:ident] [peek $(, $rest:ident)*] [$($attr:tt)*] [$($acc:tt)*]) => {
        $crate::__cache_methods! { @munch [$name, $core, $iter, $base] [$($rest),*] [$($attr)*] [$($acc)*
            /// The value of `key` without touching the policy order, or `default`.
            #[pyo3(signature = (key, default = None))]
            fn peek(
                &self,
                py: ::pyo3::Python<'_>,
                key: &::pyo3::Bound<'_, ::pyo3::PyAny>,
                default: Option<::pyo3::Py<::pyo3::PyAny>>,
            ) -> ::pyo3::PyResult<::pyo3::Py<::pyo3::PyAny>> {
                Ok(match self.core.peek(py, key)? {
                    Some((value, _)) => value,
                    None => default.unwrap_or_else(|| py.None()),
                })
            }
        ] }
    };
    (@munch [$name:ident, $core:ty, $iter:ty, $base:ident] [first_last $(, $rest:ident)*] [$($attr:tt)*] [$($acc:tt)*]) => {
        $crate::__cache_methods! { @munch [$name, $core, $iter, $base] [$($rest),*] [$($attr)*] [$($acc)*
            /// The key at index `n` of the insertion order (negative counts from the end).
            #[pyo3(signature = (n = 0))]
            fn first(&self, py: ::pyo3::Python<'_>, n: isize) -> ::pyo3::PyResult<Option<::pyo3::Py<::pyo3::PyAny>>> {
                self.core.nth_key(py, n)
            }

            /// The newest key, or `None`.
            fn last(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<Option<::pyo3::Py<::pyo3::PyAny>>> {
                self.core.nth_key(py, -1)
            }
        ] }
    };
    (@munch [$name:ident, $core:ty, $iter:ty, $base:ident] [lru_order $(, $rest:ident)*] [$($attr:tt)*] [$($acc:tt)*]) => {
        $crate::__cache_methods! { @munch [$name, $core, $iter, $base] [$($rest),*] [$($attr)*] [$($acc)*
            /// The key `popitem` would remove next, or `None`.
            fn least_recently_used(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<Option<::pyo3::Py<::pyo3::PyAny>>> {
                self.core.nth_key(py, 0)
            }

            /// The key used most recently, or `None`.
            fn most_recently_used(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<Option<::pyo3::Py<::pyo3::PyAny>>> {
                self.core.nth_key(py, -1)
            }
        ] }
    };
    (@munch [$name:ident, $core:ty, $iter:ty, $base:ident] [lfu_order $(, $rest:ident)*] [$($attr:tt)*] [$($acc:tt)*]) => {
        $crate::__cache_methods! { @munch [$name, $core, $iter, $base] [$($rest),*] [$($attr)*] [$($acc)*
            /// The key at index `n` of the LFU order (0: evicted next), or `None`.
            #[pyo3(signature = (n = 0))]
            fn least_frequently_used(&self, py: ::pyo3::Python<'_>, n: isize) -> ::pyo3::PyResult<Option<::pyo3::Py<::pyo3::PyAny>>> {
                self.core.nth_key(py, n)
            }

            /// An iterator over `(key, value, frequency)`, in LFU order.
            fn items_with_frequency(slf: &::pyo3::Bound<'_, Self>) -> ::pyo3::PyResult<[<$name Iterator>]> {
                Self::iterator(slf, slf.get().core.iter(slf.py(), <$core>::ITEMS_WITH_FREQUENCY)?)
            }
        ] }
    };
    (@munch [$name:ident, $core:ty, $iter:ty, $base:ident] [random_key $(, $rest:ident)*] [$($attr:tt)*] [$($acc:tt)*]) => {
        $crate::__cache_methods! { @munch [$name, $core, $iter, $base] [$($rest),*] [$($attr)*] [$($acc)*
            /// A uniformly random key (not removed); `KeyError` when empty.
            fn random_key(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<::pyo3::Py<::pyo3::PyAny>> {
                self.core.random_key(py)
            }
        ] }
    };
    (@munch [$name:ident, $core:ty, $iter:ty, $base:ident] [expiring $(, $rest:ident)*] [$($attr:tt)*] [$($acc:tt)*]) => {
        $crate::__cache_methods! { @munch [$name, $core, $iter, $base] [$($rest),*] [$($attr)*] [$($acc)*
            /// `(value, seconds left)` for `key`, or `(default, 0.0)`.
            #[pyo3(signature = (key, default = None))]
            fn get_with_expire(
                &self,
                py: ::pyo3::Python<'_>,
                key: &::pyo3::Bound<'_, ::pyo3::PyAny>,
                default: Option<::pyo3::Py<::pyo3::PyAny>>,
            ) -> ::pyo3::PyResult<(::pyo3::Py<::pyo3::PyAny>, f64)> {
                self.core.with_expire(py, key, default.unwrap_or_else(|| py.None()), <$core>::PEEK)
            }

            /// Removes `key`; returns `(value, seconds left)`, or `(default, 0.0)`.
            #[pyo3(signature = (key, default = None))]
            fn pop_with_expire(
                &self,
                py: ::pyo3::Python<'_>,
                key: &::pyo3::Bound<'_, ::pyo3::PyAny>,
                default: Option<::pyo3::Py<::pyo3::PyAny>>,
            ) -> ::pyo3::PyResult<(::pyo3::Py<::pyo3::PyAny>, f64)> {
                self.core.with_expire(py, key, default.unwrap_or_else(|| py.None()), <$core>::POP)
            }

            /// Removes the next entry to expire; returns `(key, value, seconds left)`.
            fn popitem_with_expire(
                &self,
                py: ::pyo3::Python<'_>,
            ) -> ::pyo3::PyResult<(::pyo3::Py<::pyo3::PyAny>, ::pyo3::Py<::pyo3::PyAny>, f64)> {
                self.core.popitem_with_expire(py)
            }

            /// An iterator over `(key, value, seconds left)`.
            fn items_with_expire(slf: &::pyo3::Bound<'_, Self>) -> ::pyo3::PyResult<[<$name Iterator>]> {
                Self::iterator(slf, slf.get().core.iter(slf.py(), <$core>::ITEMS_WITH_EXPIRE)?)
            }

            /// Removes expired entries now, then shrinks the table.
            fn expire(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<()> {
                self.core.expire(py)
            }
        ] }
    };
}
