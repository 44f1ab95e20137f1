# The cluster the bundle's apps are deployed to, and the bucket the
# pipelines land raw data in.

resource "google_container_cluster" "platform" {
  name                = var.cluster_name
  location            = var.region
  enable_autopilot    = true
  deletion_protection = true
  resource_labels     = var.labels
}

resource "google_storage_bucket" "raw" {
  name                        = var.bucket_name
  location                    = var.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

  versioning {
    enabled = true
  }
}
