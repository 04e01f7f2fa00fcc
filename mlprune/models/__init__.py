"""VGG16-SSD models and their architecture specs."""
