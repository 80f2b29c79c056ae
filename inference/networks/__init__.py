"""Networks: attention U-Net (segmentation), RERN and MONAI LocalNet (registration)."""

from inference.networks.attention_unet import AttentionUNet2D
from inference.networks.localnet import localnet_create
from inference.networks.rern import RERN

__all__ = ["RERN", "AttentionUNet2D", "localnet_create"]
