//! A serde `Deserializer` wrapper that caps the length hints of sequences and maps.
//!
//! bincode's serde path reads a sequence's length from the input and hands it to serde as the
//! size hint, without counting it against the decode limit; serde's `Vec` and map visitors
//! then preallocate up to 1 MiB for it before the first element fails to decode. So six
//! hostile bytes claiming four billion entries cost a 1 MiB allocation (docs/FUZZING.md).
//! A body of `n` bytes holds at most `n` elements that take a byte or more, so [`Capped`] caps
//! every hint at the body's length: a preallocation is then at most `n` elements (`n` times
//! the element's size in memory, which serde still caps at 1 MiB per sequence), no longer
//! four billion, and decoding itself is unchanged (a hint only sizes the first allocation).
//! So a hostile frame's allocations grow with its own length, which the frame limit bounds.
//!
//! It wraps the whole tree: every nested value is deserialized through another `Capped`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// Deserializes a `T` with every sequence and map length hint capped at `cap`.
pub(crate) struct CappedSeed<T> {
    cap: usize,
    target: PhantomData<T>,
}

impl<T> CappedSeed<T> {
    /// Hints at most `cap` (the body's length in bytes).
    pub(crate) fn new(cap: usize) -> Self {
        Self { cap, target: PhantomData }
    }
}

impl<'de, T: de::Deserialize<'de>> DeserializeSeed<'de> for CappedSeed<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::deserialize(Capped { inner: deserializer, cap: self.cap })
    }
}

/// A deserializer whose visitors see capped length hints.
struct Capped<D> {
    inner: D,
    cap: usize,
}

/// A visitor wrapped so that what it is handed (sequences, maps, enums, nested
/// deserializers) is wrapped too.
struct CappedVisitor<V> {
    inner: V,
    cap: usize,
}

/// A seed wrapped so that the value it deserializes goes through [`Capped`].
struct Seed<S> {
    inner: S,
    cap: usize,
}

/// A sequence, map, enum or variant access with the same cap.
struct Access<A> {
    inner: A,
    cap: usize,
}

macro_rules! forward_deserialize {
    ($($method:ident $(($($arg:ident: $ty:ty),*))?;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($($arg: $ty,)*)? visitor: V) -> Result<V::Value, D::Error> {
                self.inner.$method($($($arg,)*)? CappedVisitor { inner: visitor, cap: self.cap })
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Capped<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any; deserialize_bool; deserialize_i8; deserialize_i16; deserialize_i32;
        deserialize_i64; deserialize_i128; deserialize_u8; deserialize_u16; deserialize_u32;
        deserialize_u64; deserialize_u128; deserialize_f32; deserialize_f64; deserialize_char;
        deserialize_str; deserialize_string; deserialize_bytes; deserialize_byte_buf;
        deserialize_option; deserialize_unit; deserialize_seq; deserialize_map;
        deserialize_identifier; deserialize_ignored_any;
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
                self.inner.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for CappedVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool); visit_i8(i8); visit_i16(i16); visit_i32(i32); visit_i64(i64);
        visit_i128(i128); visit_u8(u8); visit_u16(u16); visit_u32(u32); visit_u64(u64);
        visit_u128(u128); visit_f32(f32); visit_f64(f64); visit_char(char); visit_str(&str);
        visit_borrowed_str(&'de str); visit_string(String); visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]); visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Capped { inner: d, cap: self.cap })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Capped { inner: d, cap: self.cap })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(Access { inner: seq, cap: self.cap })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Access { inner: map, cap: self.cap })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(Access { inner: data, cap: self.cap })
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Capped { inner: d, cap: self.cap })
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Access<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, A::Error> {
        self.inner.next_element_seed(Seed { inner: seed, cap: self.cap })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint().map(|n| n.min(self.cap))
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Access<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(Seed { inner: seed, cap: self.cap })
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.next_value_seed(Seed { inner: seed, cap: self.cap })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint().map(|n| n.min(self.cap))
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Access<A> {
    type Error = A::Error;
    type Variant = Access<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<(T::Value, Self::Variant), A::Error> {
        let cap = self.cap;
        let (value, variant) = self.inner.variant_seed(Seed { inner: seed, cap })?;
        Ok((value, Access { inner: variant, cap }))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Access<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.newtype_variant_seed(Seed { inner: seed, cap: self.cap })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner.tuple_variant(len, CappedVisitor { inner: visitor, cap: self.cap })
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.inner.struct_variant(fields, CappedVisitor { inner: visitor, cap: self.cap })
    }
}
