//! A snapshot's fields written into a file's JSON object, each talker with its host name.
//!
//! The capture library serialises a [`Snapshot`] and knows nothing of names (the library
//! counts; the binary presents). Rather than copy its field list here, the snapshot is
//! serialised through [`Fields`], a serializer that accepts only a struct and writes each of
//! its fields into the file's map as it comes, replacing the `talkers` field by the same rows
//! with `name` added where one is known. Nothing is buffered: the rows still stream to the file.

use serde::Serialize;
use serde::ser::{self, Impossible, SerializeMap, SerializeStruct, Serializer};
use traffic_counter_capture::Snapshot;
use traffic_counter_capture::snapshot::Talker;

use crate::names::NameMap;

/// Writes every field of `snapshot` into `map`, talkers with their names from `names`.
pub(super) fn fields_into<M: SerializeMap>(
    map: &mut M,
    snapshot: &Snapshot,
    names: &NameMap,
) -> Result<(), M::Error> {
    let talkers = NamedTalkers {
        talkers: &snapshot.talkers,
        names,
    };
    snapshot.serialize(Fields { map, talkers })
}

/// The talkers, each as the library writes it plus `name` when its address has one.
struct NamedTalkers<'a> {
    talkers: &'a [Talker],
    names: &'a NameMap,
}

#[derive(Serialize)]
struct NamedTalker<'a> {
    #[serde(flatten)]
    talker: &'a Talker,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

impl Serialize for NamedTalkers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.talkers.iter().map(|talker| NamedTalker {
            talker,
            name: self.names.get(talker.ip),
        }))
    }
}

/// Serializes a struct's fields into an open map, its `talkers` field as `talkers`; anything
/// but a struct is an error.
struct Fields<'m, 'n, M> {
    map: &'m mut M,
    talkers: NamedTalkers<'n>,
}

impl<M: SerializeMap> SerializeStruct for Fields<'_, '_, M> {
    type Ok = ();
    type Error = M::Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), M::Error> {
        // The talkers field is swapped for the named rows only when there are names to add,
        // so a file without names is written exactly as before, row for row.
        if key == "talkers" && !self.talkers.names.is_empty() {
            self.map.serialize_entry(key, &self.talkers)
        } else {
            self.map.serialize_entry(key, value)
        }
    }

    fn end(self) -> Result<(), M::Error> {
        Ok(())
    }
}

fn not_a_struct<E: ser::Error>() -> E {
    E::custom("a snapshot serialises as a struct")
}

macro_rules! not_a_struct {
    ($($method:ident($($arg:ty),*);)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<(), M::Error> {
            Err(not_a_struct())
        })*
    };
}

impl<M: SerializeMap> Serializer for Fields<'_, '_, M> {
    type Ok = ();
    type Error = M::Error;
    type SerializeSeq = Impossible<(), M::Error>;
    type SerializeTuple = Impossible<(), M::Error>;
    type SerializeTupleStruct = Impossible<(), M::Error>;
    type SerializeTupleVariant = Impossible<(), M::Error>;
    type SerializeMap = Impossible<(), M::Error>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), M::Error>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, M::Error> {
        Ok(self)
    }

    not_a_struct! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), M::Error> {
        Err(not_a_struct())
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), M::Error> {
        Err(not_a_struct())
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), M::Error> {
        Err(not_a_struct())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, M::Error> {
        Err(not_a_struct())
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, M::Error> {
        Err(not_a_struct())
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, M::Error> {
        Err(not_a_struct())
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, M::Error> {
        Err(not_a_struct())
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, M::Error> {
        Err(not_a_struct())
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, M::Error> {
        Err(not_a_struct())
    }
}
