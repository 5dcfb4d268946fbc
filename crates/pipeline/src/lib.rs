//! sepstream-pipeline: stages on threads joined by bounded crossbeam channels, with deadlines and overload policy.
