//! Opening a lake and its catalog: one function for the command, the scheduled task, the
//! benchmarks and the tests.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::{Catalog, GlueCatalog, GlueTarget, Lake, LocalCatalog, ObjectCatalog};

/// Which catalog says what readers see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogKind {
    /// Inside the lake (`_catalog/`): a folder for a local lake, objects for an S3 one.
    Lake,
    /// The AWS Glue Data Catalog (what Athena reads; needs an `s3://` lake).
    Glue,
}

impl std::str::FromStr for CatalogKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "lake" => Ok(Self::Lake),
            "glue" => Ok(Self::Glue),
            other => Err(Error::Config(format!(
                "unknown catalog {other:?} (lake or glue)"
            ))),
        }
    }
}

/// Where the lake and its catalog are.
#[derive(Debug, Clone)]
pub struct Target {
    /// A folder, `file://…` or `s3://bucket/prefix`.
    pub lake: String,
    pub catalog: CatalogKind,
    pub glue: GlueTarget,
}

impl Target {
    /// A local lake with its embedded catalog.
    pub fn local(lake: impl Into<String>) -> Self {
        Self {
            lake: lake.into(),
            catalog: CatalogKind::Lake,
            glue: GlueTarget::default(),
        }
    }

    /// Whether anything of it lives on AWS (so an AWS configuration is needed).
    pub fn on_aws(&self) -> bool {
        self.lake.starts_with("s3://") || self.catalog == CatalogKind::Glue
    }

    /// The process's AWS configuration ([`eventlake_store::sdk_config`]) when the target, or
    /// the caller (`need_aws`: Athena, say), needs one; load it once and share it.
    pub async fn aws_config(&self, need_aws: bool) -> Option<aws_config::SdkConfig> {
        if self.on_aws() || need_aws {
            Some(eventlake_store::sdk_config().await)
        } else {
            None
        }
    }
}

/// An opened lake and catalog, and the AWS configuration they were opened with (shared by every
/// other AWS client of the same process).
#[derive(Debug, Clone)]
pub struct Context {
    pub target: Target,
    pub lake: Lake,
    pub catalog: Arc<dyn Catalog>,
    pub sdk: Option<aws_config::SdkConfig>,
}

/// Opens the lake and its catalog; a local lake folder is created when `create` is set. `sdk`
/// is the process's one AWS configuration ([`eventlake_store::sdk_config`]), needed when
/// [`Target::on_aws`]: load it once and pass it to every call. The lake is checked (a wrong key
/// or a missing bucket is reported here, before any work).
pub async fn open(
    target: &Target,
    create: bool,
    sdk: Option<aws_config::SdkConfig>,
) -> Result<Context> {
    let lake = match &sdk {
        Some(sdk) => Lake::open_with_sdk(&target.lake, create, sdk)?,
        None => Lake::open(&target.lake, create)?,
    };
    lake.check().await?;
    let catalog: Arc<dyn Catalog> = match target.catalog {
        CatalogKind::Lake => match lake.local_dir() {
            Some(dir) => Arc::new(LocalCatalog::new(dir)),
            None => Arc::new(ObjectCatalog::new(&lake)),
        },
        CatalogKind::Glue => {
            if !lake.is_s3() {
                return Err(Error::Config(format!(
                    "--catalog glue needs an s3:// lake (Athena reads the partitions' locations); {lake:?} is a folder"
                )));
            }
            let Some(sdk) = &sdk else {
                return Err(Error::Config(
                    "--catalog glue needs the AWS configuration".into(),
                ));
            };
            Arc::new(GlueCatalog::new(sdk, target.glue.clone(), &lake))
        }
    };
    Ok(Context {
        target: target.clone(),
        lake,
        catalog,
        sdk,
    })
}
