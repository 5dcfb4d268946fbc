//! sepstream-vision: camera and depth frames, a simulated depth camera, row-streaming 2D networks.
