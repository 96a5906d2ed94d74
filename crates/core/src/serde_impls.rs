//! `Serialize` for the resolution types (feature `serde`): addresses as
//! RFC 5952 text, sources by their configuration names, warnings as text.

use serde::ser::{Serialize, SerializeSeq, SerializeStruct, Serializer};

use crate::{Resolution, Source, Warning, Warnings};

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for Warning {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Warnings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for w in self.iter() {
            seq.serialize_element(&w)?;
        }
        seq.end()
    }
}

impl Serialize for Resolution {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Resolution", 4)?;
        st.serialize_field("client_ip", &self.ip.to_string())?;
        st.serialize_field("source", &self.source)?;
        st.serialize_field("hop", &self.hop)?;
        st.serialize_field("warnings", &self.warnings)?;
        st.end()
    }
}
