# This file is maintained automatically by "tofu init".
# Manual edits may be lost in future updates.

provider "registry.opentofu.org/confluentinc/confluent" {
  version     = "2.83.4"
  constraints = "~> 2.83.0"
}
