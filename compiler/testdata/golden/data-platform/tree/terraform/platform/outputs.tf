output "cluster_name" {
  description = "Name of the cluster, for `gcloud container clusters get-credentials`."
  value       = google_container_cluster.platform.name
}

output "cluster_endpoint" {
  description = "Address of the cluster's API server: the Argo CD destination server."
  value       = "https://${google_container_cluster.platform.endpoint}"
}

output "bucket_name" {
  description = "Name of the raw data bucket, for the pipelines' values."
  value       = google_storage_bucket.raw.name
}

output "bucket_url" {
  description = "gs:// URL of the raw data bucket."
  value       = google_storage_bucket.raw.url
}
