variable "project" {
  description = "Google Cloud project that holds the platform."
  type        = string
}

variable "region" {
  description = "Region of the cluster."
  type        = string
  default     = "europe-west1"
}

variable "cluster_name" {
  description = "Name of the GKE Autopilot cluster the apps run on."
  type        = string
  default     = "data-platform"
}

variable "bucket_name" {
  description = "Name of the bucket the pipelines land raw data in; globally unique."
  type        = string
}

variable "bucket_location" {
  description = "Location of the bucket: a region or a multi-region."
  type        = string
  default     = "EU"
}

variable "labels" {
  description = "Labels on every resource."
  type        = map(string)
  default     = {}
}
