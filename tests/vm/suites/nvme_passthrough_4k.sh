# nvme_passthrough.sh with the guest's NVMe drives formatted with 4096-byte LBAs.
NVME_LBA=4096
source "$(dirname "${BASH_SOURCE[0]}")/nvme_passthrough.sh"
