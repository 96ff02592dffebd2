//! Data bags and their items.

use serde::{Deserialize, Serialize};

use super::{JsonMap, ObjectError};

/// A data bag as `DELETE /data/BAG` and the bag listing describe it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataBag {
    /// Bag name.
    pub name: String,
    /// Always `Chef::DataBag`.
    #[serde(default = "bag_class")]
    pub json_class: String,
    /// Always `data_bag`.
    #[serde(default = "bag_type")]
    pub chef_type: String,
    /// Fields this type does not model.
    #[serde(flatten)]
    pub extra: JsonMap,
}

fn bag_class() -> String {
    super::owned("Chef::DataBag")
}

fn bag_type() -> String {
    super::owned("data_bag")
}

impl DataBag {
    /// A bag with Chef's defaults.
    pub fn new(name: &str) -> Self {
        DataBag {
            name: name.to_owned(),
            json_class: bag_class(),
            chef_type: bag_type(),
            extra: JsonMap::new(),
        }
    }
}

/// A data bag item: free-form JSON with a string `id`. Encrypted items are ordinary items
/// whose values are objects; they are carried as they are.
#[derive(Debug, Clone, PartialEq)]
pub struct DataBagItem {
    raw: JsonMap,
}

impl DataBagItem {
    /// Reads an item from a request body, unwrapping the `{"json_class":"Chef::DataBagItem",
    /// "raw_data":{…}}` form some clients send. The item must have a string `id`.
    pub fn from_json(value: serde_json::Value) -> Result<Self, ObjectError> {
        let serde_json::Value::Object(mut map) = value else {
            return Err(ObjectError::Json(
                "a data bag item must be a JSON object".into(),
            ));
        };
        let wrapped = map.get("json_class").and_then(|v| v.as_str()) == Some("Chef::DataBagItem")
            && map.get("raw_data").is_some_and(|v| v.is_object());
        if wrapped && let Some(serde_json::Value::Object(inner)) = map.remove("raw_data") {
            map = inner;
        }
        match map.get("id") {
            Some(serde_json::Value::String(id)) if !id.is_empty() => {}
            Some(_) => {
                return Err(ObjectError::Field {
                    field: "id".into(),
                    problem: "must be a non-empty string",
                });
            }
            None => {
                return Err(ObjectError::Field {
                    field: "id".into(),
                    problem: "is required",
                });
            }
        }
        Ok(DataBagItem { raw: map })
    }

    /// The item id.
    pub fn id(&self) -> &str {
        self.raw
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
    }

    /// The item's JSON as stored (without the wrapper).
    pub fn raw(&self) -> &JsonMap {
        &self.raw
    }

    /// Consumes the item, returning its JSON.
    pub fn into_raw(self) -> JsonMap {
        self.raw
    }
}

impl Serialize for DataBagItem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for DataBagItem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        DataBagItem::from_json(value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_everything_including_encrypted_values() {
        let value = json!({"id":"db","password":{"encrypted_data":"abc","iv":"x","version":3,"cipher":"aes-256-gcm","auth_tag":"t"},"n":[1,2]});
        let item = DataBagItem::from_json(value.clone()).unwrap();
        assert_eq!(item.id(), "db");
        assert_eq!(serde_json::to_value(&item).unwrap(), value);
    }

    #[test]
    fn unwraps_raw_data() {
        let item = DataBagItem::from_json(
            json!({"json_class":"Chef::DataBagItem","raw_data":{"id":"a","k":1}}),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&item).unwrap(),
            json!({"id":"a","k":1})
        );
    }

    #[test]
    fn requires_a_string_id() {
        for bad in [
            json!({}),
            json!({"id":1}),
            json!({"id":""}),
            json!([1]),
            json!("x"),
        ] {
            assert!(DataBagItem::from_json(bad.clone()).is_err(), "{bad}");
        }
        let err = DataBagItem::from_json(json!({"k":1})).unwrap_err();
        assert_eq!(err.to_string(), "field 'id' is required");
    }

    #[test]
    fn bag_defaults() {
        let bag: DataBag = serde_json::from_str(r#"{"name":"users"}"#).unwrap();
        assert_eq!(bag, DataBag::new("users"));
    }
}
