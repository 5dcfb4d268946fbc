//! sepstream-train: training keyword models on Speech Commands-layout folders and exporting them for sepstream-nn.
