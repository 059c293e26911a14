"""Everything that imports rclpy lives here; node_core and params are rclpy-free."""
