"""Helpers for plugin authors, documented and kept stable like the contract: import them by module.

    text        terminal_safe, markdown_safe, warn: strings from files and plugins made safe to print
    checks      require_at_least, require_positive, check_fields: one-line errors for bad options
    devices     to_device, available_cores, worker_threads: where tensors and worker processes go
    nn          MaskedConv2d, discretized likelihoods, categorical sampling: layers models share
    unet        UNet: the noise or velocity network of diffusion and flow models, sized from the data
    training    train_epochs, adam, adam_with_cosine_decay: the seeded fit loop with progress and curves
    data        make_dataset, split_train_test, binarize, fingerprint: building a data set plugin
    files       write_atomic, file_sha256, checked tensors and JSON: files that are whole or absent
    stats       feature_statistics, frechet_distance, kernel_inception_distance, mean and interval
    features    load_extractor, generated_features, reference_statistics: features for sample metrics
    neighbours  kth_neighbour_distances, ball_membership, density_and_coverage: k-NN balls of features
    reference   FID reference statistics in pytorch-fid's .npz layout
    trackers    check_library, TrackerFailures: the skeleton every tracker plugin shares

Nothing here imports the registry, the store or the runner.
"""
