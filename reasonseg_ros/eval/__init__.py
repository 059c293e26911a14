"""Bag replay evaluation, metrics and dataset converters (rosbags, never rclpy)."""
